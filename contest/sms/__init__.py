"""Sending sign-in codes by SMS: request signing for the SMS clouds (``signing``, pure functions)
and the providers chosen by QUIZ_SMS_PROVIDER (``providers``)."""
