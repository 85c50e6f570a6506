"""Error messages in the reader's language: stable codes with parameters, Chinese or English text.

Every error the API returns has a stable ``code``; field and row errors carry a code and
parameters of their own.  The English text is written where the error is raised; this module
holds the Chinese text of each code and the form labels field names are shown as, so a page
that sends ``Accept-Language: zh-CN`` reads "结束时间必须晚于开始时间" instead of
"ends_at: must be after starts_at".  No aiohttp here: the middleware calls ``localize_error``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ERRORS_ZH", "FIELD_CODES_ZH", "LABELS_EN", "LABELS_ZH", "ROW_CODES_ZH", "field_label", "localize_error",
           "prefers_chinese"]

# The form's labels (admin contest form, question editor, import templates, registration page).
LABELS_ZH: dict[str, str] = {
    "contest_id": "竞赛 ID", "title": "标题", "description": "说明", "timezone": "时区",
    "starts_at": "开始时间", "ends_at": "结束时间", "time_limit_s": "答题时限（秒）",
    "question_time_limit_s": "每题时限（秒）", "attempts_per_day": "每日次数", "attempts_total": "总次数",
    "counted_per_day": "每天计分次数", "ranking": "排名方式", "feedback": "答案反馈", "paper": "组卷规则",
    "paper.draw": "抽题规则", "scoring": "计分规则", "shards": "分片数", "min_answer_ms": "最短答题时间",
    "name": "姓名", "phone": "手机号", "org_id": "所在单位", "parent_id": "上级单位", "level": "层级",
    "members": "应参与人数", "ticket": "登录凭证", "reason": "原因", "action": "操作", "file": "文件",
    "id": "编号", "type": "题型", "stem": "题干", "options": "选项", "answer": "答案", "category": "分类",
    "difficulty": "难度", "points": "分值", "explanation": "解析", "count": "题数", "q": "搜索",
    "offset": "起始位置", "limit": "条数", "board": "榜单", "date": "日期", "winners": "中奖人数",
    "min_score": "最低分", "date_from": "起始日期", "date_to": "截止日期", "exclude_flagged": "排除可疑答卷",
    "code": "验证码", "purpose": "用途", "disabled": "停用",
    "shuffle_questions": "打乱题目顺序", "shuffle_options": "打乱选项顺序", "partial_credit": "多选题部分得分",
    "time_bonus": "用时加分", "streak_bonus": "连对加分", "eligibility": "抽奖条件",
    "mode": "竞赛模式", "max_questions": "最多题数", "review_after_end": "结束后公布答案", "certificate": "证书",
    "certificate.min_score": "证书最低分", "certificate.title": "证书标题",
}
# Import files name some columns differently from the forms (the templates' headers).
ROW_LABELS_ZH: dict[str, str] = {"org_id": "单位编号", "name": "单位名称", "parent_id": "上级单位", "level": "层级",
                                 "members": "应参与人数", "id": "编号"}
ROW_LABELS_EN: dict[str, str] = {"org_id": "org_id", "name": "name", "parent_id": "parent_id", "level": "level",
                                 "members": "members", "id": "id"}
LABELS_EN: dict[str, str] = {
    "contest_id": "Contest ID", "title": "Title", "description": "Description", "timezone": "Timezone",
    "starts_at": "Start time", "ends_at": "End time", "time_limit_s": "Time limit (s)", "name": "Name",
    "phone": "Phone", "org_id": "Organization", "stem": "Stem", "answer": "Answer", "options": "Options",
    "category": "Category", "difficulty": "Difficulty", "points": "Points", "explanation": "Explanation",
    "type": "Type", "reason": "Reason", "winners": "Winners", "date_from": "From date", "date_to": "To date",
}
for _key in "ABCDEFGH":
    LABELS_ZH[f"option_{_key.lower()}"] = f"选项{_key}"
    LABELS_EN[f"option_{_key.lower()}"] = f"Option {_key}"

# Top-level error codes (API.md's table and the additions).
ERRORS_ZH: dict[str, str] = {
    "invalid_json": "请求格式错误（需要 JSON）",
    "validation_failed": "填写的内容有误",
    "bad_request": "请求格式错误",
    "unauthenticated": "请先登录",
    "token_expired": "登录已过期，请重新登录",
    "forbidden": "没有权限",
    "contest_closed": "竞赛不在开放时间内",
    "not_found": "没有找到",
    "method_not_allowed": "不支持该请求方法",
    "already_registered": "该手机号已注册",
    "already_answered": "本题已作答",
    "already_finished": "本次答题已交卷",
    "already_exists": "编号已存在",
    "already_drawn": "该抽奖已经开奖，不能重复开奖",
    "attempt_limit_reached": "答题次数已用完",
    "paper_unavailable": "题库中的题目不足以组卷",
    "conflict": "状态冲突，请刷新后重试",
    "deadline_passed": "答题时间已到",
    "gone": "已失效",
    "payload_too_large": "文件太大",
    "unsupported_media_type": "不支持的文件类型",
    "rate_limited": "操作太频繁，请稍后再试",
    "unavailable": "服务繁忙，请稍后再试（本次操作未生效）",
    "internal_error": "服务器内部错误",
    "question_in_use": "该题已被抽入答卷，已停用而不是删除",
}

# Field error codes raised by contest.validation.Fields and the views; {label} is the form's label.
FIELD_CODES_ZH: dict[str, str] = {
    "required": "请填写{label}",
    "not_text": "{label}必须是文字",
    "empty": "{label}不能为空",
    "too_short": "{label}至少需要 {min} 个字",
    "too_long": "{label}最多 {max} 个字",
    "bad_format": "{label}格式不正确",
    "not_integer": "{label}必须是整数",
    "too_small": "{label}不能小于 {min}",
    "too_large": "{label}不能大于 {max}",
    "not_boolean": "{label}必须是“是”或“否”",
    "not_a_choice": "{label}只能是 {options} 之一",
    "not_a_date_time": "{label}必须是日期时间",
    "date_range": "{to_label}必须晚于{from_label}",
    "unknown_org": "{label}不存在",
    "unknown_timezone": "{label}不是有效的时区（例如 Asia/Shanghai）",
    "not_a_phone": "{label}必须是 11 位中国大陆手机号",
    "not_a_member_unit": "{label}不能选这一级，请选到最下一级的单位",
    "control_characters": "{label}不能包含控制字符",
    "not_changeable": "{label}不能修改",
    "not_an_object": "{label}格式不正确",
    "draw_empty": "请至少添加一条抽题规则",
    "too_many_questions": "每次答题最多 {max} 道题",
    "not_enough_questions": "{label}：题库中符合条件的题目不够（{detail}）",
}
# English texts raised without a code (by views this module does not own), mapped to one
KNOWN_TEXTS: dict[str, str] = {
    "must be a phone number of 6-15 digits": "not_a_phone",
    "must not contain control characters": "control_characters",
    "is not a known org": "unknown_org",
    "must be YYYY-MM-DD": "bad_format",
    "is required": "required",
    "must not be empty": "empty",
}

# Import row error codes (question_bank and the org tree).
ROW_CODES_ZH: dict[str, str] = {
    "too_many_rows": "行数太多：每个文件最多 {max} 行",
    "not_an_object": "这一行必须是 JSON 对象",
    "column_twice": "{label}列出现了两次",
    "not_text": "{label}必须是文字",
    "too_long": "{label}超过 {max} 个字（{length}）",
    "stem_empty": "题干为空",
    "type_empty": "题型为空",
    "unknown_type": "题型“{value}”无效：请填写单选、多选或判断",
    "option_gap": "{label}为空，但后面还有选项",
    "judge_two_options": "判断题必须正好有两个选项",
    "too_few_options": "选择题需要 2 到 8 个选项",
    "options_twice": "选项和选项A..选项H只能二选一",
    "options_not_list": "选项必须是文字列表",
    "too_many_options": "最多 {max} 个选项，实际 {count} 个",
    "answer_empty": "答案为空",
    "answer_not_an_option": "答案“{value}”无效：请填写 {hint}",
    "one_answer_only": "该题型只能有一个正确选项，实际为“{value}”",
    "difficulty_range": "难度必须是 1-5 或 易/中/难，实际为 {value}",
    "points_range": "分值必须是 1 到 {max} 的整数，实际为 {value}",
    "not_a_whole_number": "{label}必须是整数，实际为“{value}”",
    "bad_id": "编号只能由 1-64 个字母、数字、'_'、'-'、'.' 或 ':' 组成",
    "duplicate_id": "编号“{value}”重复（与第 {first} 行）",
    "duplicate_question": "与第 {first} 行的题目相同（题型、题干和选项一致）",
    "bad_org_id": "单位编号必须是 1-64 个字母、数字、'_'、'.'、'-'",
    "bad_parent_id": "上级单位必须为空（顶级单位）或是有效的单位编号",
    "bad_name": "单位名称必须是 1-{max} 个字",
    "bad_level": "层级必须是 1-{max} 或 省/市/县/乡/村",
    "bad_members": "应参与人数必须是不小于 0 的整数",
    "duplicate_org": "单位编号“{value}”重复（与第 {first} 行）",
    "parent_loop": "单位“{value}”的上级链条形成了循环",
    "root_level": "没有上级单位的是顶级单位，层级必须为 1",
    "unknown_parent": "上级单位“{value}”不存在：既不在文件中，也未导入过",
    "level_breaks_children": "层级 {value} 与已有的 {count} 个下级单位不符",
    "level_below_parent": "层级必须是 {expected}，比上级单位（{parent}）低一级",
    "file_format": "无法读取文件：{detail}",
    "xls_file": "不支持旧版 Excel .xls 文件，请另存为 .xlsx",
    "unknown_format": "无法识别的文件格式：请上传 .json、.csv 或 .xlsx 文件",
    "file_empty": "文件是空的",
    "missing_columns": "表头缺少必填列：{columns}",
    "bad_encoding": "CSV 文件必须是 UTF-8 或 GB18030 编码",
}
HINT_ZH = {"judge": "对/错 或 A/B", "options": "A 到 {last} 之间的选项字母"}


def prefers_chinese(accept_language: str | None) -> bool:
    """True when the first language the client lists is Chinese (the pages send ``zh-CN``)."""
    if not accept_language:
        return False
    best, best_q = "", -1.0
    for part in accept_language.split(","):
        lang, _, rest = part.strip().partition(";")
        q = 1.0
        match = re.search(r"q=([0-9.]+)", rest)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = 0.0
        if q > best_q:
            best, best_q = lang.strip().lower(), q
    return best.startswith("zh")


def field_label(name: str, chinese: bool, *, row: bool = False) -> str:
    """The form's label of a field ("paper.draw[0].count" -> 抽题规则 1：题数); ``row``: the import
    template's header of a column instead."""
    if row and name in ROW_LABELS_ZH:
        return (ROW_LABELS_ZH if chinese else ROW_LABELS_EN)[name]
    labels = LABELS_ZH if chinese else LABELS_EN
    if name in labels:
        return labels[name]
    match = re.fullmatch(r"(?:paper\.)?draw\[(\d+)\]\.(\w+)", name)
    if match:
        inner, n = labels.get(match.group(2), match.group(2)), int(match.group(1)) + 1
        return f"抽题规则 {n}：{inner}" if chinese else f"Draw rule {n}: {inner}"
    tail = name.rsplit(".", 1)[-1]
    return labels.get(tail, name if not chinese else LABELS_ZH.get(tail, name))


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _render(template: str, params: Mapping[str, Any]) -> str:
    return template.format_map(_Params(params))


def _field_message(name: str, code: str, params: Mapping[str, Any], chinese: bool, fallback: str) -> str:
    if not chinese:
        return fallback
    if code in ("", "invalid"):
        code = KNOWN_TEXTS.get(fallback, code)
    if code not in FIELD_CODES_ZH and code in ROW_CODES_ZH:  # the question editor reuses the import's checks
        return _row_message({"column": name, "code": code, "params": params, "message": fallback}, True)
    template = FIELD_CODES_ZH.get(code)
    label = field_label(name, True)
    if template is None:
        return f"{label}：{fallback}"
    extra = {k: field_label(v, True) for k, v in params.items() if k in ("from", "to") and isinstance(v, str)}
    return _render(template, {"label": label, **params, **{f"{k}_label": v for k, v in extra.items()}})


def _row_message(item: Mapping[str, Any], chinese: bool) -> str:
    message = str(item.get("message", ""))
    code = item.get("code")
    if not chinese or not code or code not in ROW_CODES_ZH:
        return message
    params = dict(item.get("params") or {})
    if code == "missing_columns":
        params["columns"] = "、".join(field_label(str(c), True, row=True) for c in params.get("columns") or [])
    if code == "answer_not_an_option":
        hint = params.get("hint_kind", "options")
        params["hint"] = _render(HINT_ZH.get(hint, HINT_ZH["options"]), params)
    column = str(item.get("column") or "")
    return _render(ROW_CODES_ZH[code], {"label": field_label(column, True, row=True) if column else "", **params})


def localize_error(code: str, message: str, details: Mapping[str, Any], chinese: bool) -> tuple[str, dict[str, Any]]:
    """The message and details to send: Chinese text when asked for, form labels beside field names.

    ``details["fields"]`` ({name: message}) keeps its keys (the contract's field names) and gets
    messages in the reader's language; ``details["field_errors"]`` has each field's code,
    parameters and label; every import row error gains ``column_label``.
    """
    out = dict(details)
    field_codes: Mapping[str, Any] = details.get("field_errors") or {}
    fields = details.get("fields")
    texts: list[str] = []
    if isinstance(fields, Mapping):
        localized = {}
        for name, text in fields.items():
            entry = field_codes.get(name) or {}
            localized[name] = _field_message(name, entry.get("code", ""), entry.get("params") or {}, chinese,
                                             str(text))
            texts.append(localized[name])
        out["fields"] = localized
        out["field_errors"] = {name: {"code": (field_codes.get(name) or {}).get("code", "invalid"),
                                      "params": (field_codes.get(name) or {}).get("params") or {},
                                      "label": field_label(name, chinese)} for name in fields}
    rows = details.get("errors")
    if isinstance(rows, list):
        out["errors"] = [{**item, "message": _row_message(item, chinese),
                          "column_label": field_label(str(item.get("column") or ""), chinese, row=True)}
                         if isinstance(item, Mapping) else item for item in rows]
    if not chinese:
        return message, out
    head = ERRORS_ZH.get(code, message)
    if code == "validation_failed" and texts:
        return f"{head}：{'；'.join(dict.fromkeys(texts))}", out  # a range error is one text for two fields
    if code == "validation_failed" and isinstance(rows, list) and rows:
        n = len(rows)
        if n == 1 and rows[0].get("row") == 0:
            return f"{head}：{out['errors'][0]['message']}", out
        return f"{n} 处错误，未导入任何内容", out
    return head, out
