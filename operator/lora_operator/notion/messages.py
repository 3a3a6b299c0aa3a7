"""Message catalogues for everything written to Notion: status names, comments and errors.

Each catalogue maps a message key to a str.format template with named fields. Both
catalogues have the same keys and the same fields; a unit test checks that.
"""

from __future__ import annotations

import string
from typing import Any

LOCALES = ("zh-CN", "en")

CATALOGUES: dict[str, dict[str, str]] = {
    "en": {
        "status.submitted": "Ready",
        "status.queued": "Queued",
        "status.running": "Training",
        "status.suspended": "Paused",
        "status.succeeded": "Done",
        "status.failed": "Failed",
        "status.rejected": "Rejected",
        "reject.unknown_type": "Unknown type \"{value}\". Choose one of: {choices}.",
        "reject.missing_type": "The {property} column is empty. Choose one of: {choices}.",
        "reject.no_images": "No reference images. Attach at least one image in the {property} column.",
        "reject.submitter": "{user} may not submit trainings. Ask an admin to add you to the allowed submitters.",
        "reject.override_bounds": "{property} is {value}, outside the allowed range {minimum} to {maximum}.",
        "reject.override_choice": "{property} is \"{value}\". Allowed values: {choices}.",
        "reject.override_invalid": "{property} is \"{value}\", which is not a valid {kind}.",
        "reject.invalid_spec": "The settings of this row make an invalid training: {detail}",
        "reject.attachment": "The image \"{name}\" could not be copied: {detail}",
        "reject.url_blocked": "The link to \"{name}\" is not allowed: {detail}",
        "comment.succeeded": " Training of \"{title}\" finished. Final loss {loss}. The weights are in the {property} column.",
        "comment.failed": " Training of \"{title}\" failed. {cause} Details: {error}",
        "error.failed": "{cause} Details: {error}",
        "failure.InvalidInput": "The reference images or settings cannot be used, so it was not retried. "
                                "Fix what the details name and submit the row again.",
        "failure.OOMKilled": "It ran out of memory on its last attempt. "
                             "Ask an admin for a lower resolution or rank, or a larger GPU.",
        "failure.DeadlineExceeded": "It ran longer than the time allowed for one training. Ask an admin for fewer steps.",
        "failure.other": "The trainer failed on every attempt. Ask an admin to look at the details.",
        "comment.rejected": " \"{title}\" was not trained: {reason}",
        "link.download": "Download (valid until {expires})",
        "value.none": "n/a",
        "kind.number": "number",
        "kind.integer": "whole number",
        "kind.boolean": "yes/no value",
    },
    "zh-CN": {
        "status.submitted": "待训练",
        "status.queued": "排队中",
        "status.running": "训练中",
        "status.suspended": "已暂停",
        "status.succeeded": "已完成",
        "status.failed": "失败",
        "status.rejected": "已拒绝",
        "reject.unknown_type": "未知类型“{value}”。请选择：{choices}。",
        "reject.missing_type": "{property}列为空。请选择：{choices}。",
        "reject.no_images": "没有参考图。请在{property}列至少上传一张图片。",
        "reject.submitter": "{user} 没有提交训练的权限。请联系管理员把你加入允许的提交人。",
        "reject.override_bounds": "{property}为 {value}，超出允许范围 {minimum} 到 {maximum}。",
        "reject.override_choice": "{property}为“{value}”。允许的值：{choices}。",
        "reject.override_invalid": "{property}为“{value}”，不是有效的{kind}。",
        "reject.invalid_spec": "这一行的设置无法组成有效的训练：{detail}",
        "reject.attachment": "图片“{name}”无法复制：{detail}",
        "reject.url_blocked": "不允许读取“{name}”的链接：{detail}",
        "comment.succeeded": " “{title}”训练完成，最终损失 {loss}。权重在{property}列。",
        "comment.failed": " “{title}”训练失败。{cause}详情：{error}",
        "error.failed": "{cause}详情：{error}",
        "failure.InvalidInput": "参考图或设置无法使用，因此没有重试。请按详情修改后重新提交这一行。",
        "failure.OOMKilled": "最后一次尝试时内存或显存不足。请联系管理员降低分辨率或秩，或换用更大的 GPU。",
        "failure.DeadlineExceeded": "训练超过了单次训练允许的最长时间。请联系管理员减少训练步数。",
        "failure.other": "训练程序每次尝试都失败了。请联系管理员查看详情。",
        "comment.rejected": " “{title}”未开始训练：{reason}",
        "link.download": "下载（有效期至 {expires}）",
        "value.none": "无",
        "kind.number": "数字",
        "kind.integer": "整数",
        "kind.boolean": "是/否值",
    },
}


class Localizer:
    """Formats catalogue messages in one locale."""

    def __init__(self, locale: str) -> None:
        if locale not in CATALOGUES:
            raise ValueError(f"unsupported locale {locale!r}: use one of {', '.join(LOCALES)}")
        self.locale = locale
        self._catalogue = CATALOGUES[locale]

    def text(self, key: str, **fields: Any) -> str:
        """Return the message ``key`` with its fields filled in."""
        return self._catalogue[key].format(**fields)

    def has(self, key: str) -> bool:
        return key in self._catalogue

    def list_separator(self) -> str:
        return "、" if self.locale == "zh-CN" else ", "

    def join(self, items: list[str]) -> str:
        return self.list_separator().join(items)


def template_fields(template: str) -> set[str]:
    """Return the named fields of a str.format template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
