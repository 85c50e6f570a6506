"""Import templates: the question and org files an organizer fills in, with Chinese headers.

Every header is one of the spellings the imports accept (question_bank.validate.HEADER_ALIASES,
contest.orgtree), so a downloaded template, filled in and uploaded, imports as is.  Two example
rows show the spellings of types, answers and levels.
"""

from __future__ import annotations

import csv
import io

import xlsxwriter

__all__ = ["TEMPLATES", "render_template"]

_QUESTION_HEADERS = ["编号", "题型", "题干", "选项A", "选项B", "选项C", "选项D", "选项E", "选项F", "答案", "分类",
                     "难度", "分值", "解析"]
_QUESTION_ROWS = [
    ["q-example-1", "单选", "宪法规定，（　）是国家的根本任务。",
     "沿着中国特色社会主义道路，集中力量进行社会主义现代化建设", "发展经济",
     "保护环境", "扩大开放", "", "", "A", "法律", "中", "10", "见《宪法》序言（第七自然段）。"],
    ["q-example-2", "多选", "下列属于安全生产“三违”的有（　）。", "违章指挥", "违章作业", "违反劳动纪律",
     "违规报销", "", "", "ABC", "安全", "易", "10", "“三违”：违章指挥、违章作业、违反劳动纪律。"],
]
_ORG_HEADERS = ["单位编号", "上级单位", "单位名称", "层级", "应参与人数"]
_ORG_ROWS = [
    ["100000", "", "示例省", "省", "0"],
    ["100100", "100000", "示例市（试点）", "市", "120"],
]
# name -> (headers, example rows, file name shown to the organizer)
TEMPLATES: dict[str, tuple[list[str], list[list[str]], str]] = {
    "questions": (_QUESTION_HEADERS, _QUESTION_ROWS, "题库导入模板"),
    "orgs": (_ORG_HEADERS, _ORG_ROWS, "单位导入模板"),
}


def render_template(name: str, fmt: str) -> tuple[bytes, str]:
    """The template ``name`` ('questions' | 'orgs') as ``fmt`` ('csv' | 'xlsx'): bytes and a file
    name.  KeyError / ValueError for an unknown one."""
    headers, rows, title = TEMPLATES[name]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(headers)
        writer.writerows(rows)
        # the BOM makes Excel read the Chinese headers as UTF-8
        return b"\xef\xbb\xbf" + out.getvalue().encode(), f"{title}.csv"
    if fmt != "xlsx":
        raise ValueError(f"unknown format {fmt!r}")
    data = io.BytesIO()
    book = xlsxwriter.Workbook(data, {"in_memory": True})
    sheet = book.add_worksheet(title[:31])
    bold = book.add_format({"bold": True, "bg_color": "#E8F0FE"})
    text = book.add_format({"num_format": "@"})  # ids such as "100000" stay text, not numbers
    for col, header in enumerate(headers):
        sheet.write_string(0, col, header, bold)
        sheet.set_column(col, col, max(10, min(40, 2 * len(header) + 4)), text)
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if value != "":
                sheet.write_string(r, col, value, text)
    sheet.freeze_panes(1, 0)
    book.close()
    return data.getvalue(), f"{title}.xlsx"
