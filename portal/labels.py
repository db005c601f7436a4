"""Human words for every state: one label table for the codes the portal stores.

Pages, exports and messages show `label(kind, code)`, never the code itself: "已发布" and
"Published", not `published`. A code without a label is shown as "—" and logged, so a new
state added without its words is noticed (tests/test_labels.py renders the pages that show
states and fails on a raw code).
"""

from __future__ import annotations

import logging

from .messages import Message, _

log = logging.getLogger(__name__)

LABELS: dict[str, dict[str, Message]] = {
    "open_class": {
        "unconditional": _("无条件开放"),
        "conditional": _("有条件开放"),
        "not_open": _("不予开放"),
        "": _("待确定"),
    },
    "dataset_status": {
        "published": _("已发布"),
        "internal": _("不公开（仅部门可见）"),
        "held": _("暂缓发布，待处理"),
        "withdrawn": _("已撤回"),
    },
    "job_kind": {
        "mail": _("发送邮件"),
        "remind": _("每日提醒"),
        "follows": _("关注通知"),
        "digest": _("关注动态周报"),
        "reindex": _("重建搜索索引"),
        "harvest": _("采集"),
        "harvest_dry_run": _("试采集（不发布）"),
        "check_upload": _("检查上传的文件"),
        "bundle": _("生成数据包"),
        "licensed_zip": _("生成授权数据包"),
        "sandbox_query": _("数据沙箱查询"),
        "sandbox_prepare": _("准备数据沙箱"),
        "publish_upload": _("发布上传的新版本"),
    },
    "upload_status": {
        "receiving": _("上传中"),
        "checking": _("检查中"),
        "checked": _("已检查，待确认"),
        "publishing": _("发布中"),
        "published": _("已发布"),
        "failed": _("检查未通过"),
        "discarded": _("已放弃"),
    },
    "duplicate_status": {
        "open": _("待核对"),
        "proposed": _("已建议合并，待确认"),
        "merged": _("已合并"),
        "dismissed": _("不是重复目录"),
    },
    "job_state": {
        "queued": _("排队中"),
        "running": _("运行中"),
        "done": _("已完成"),
        "failed": _("已失败"),
    },
    "harvest_schedule": {
        "manual": _("仅手动"),
        "daily": _("每天"),
        "weekly": _("每周"),
        "cycle": _("按更新周期"),
    },
    "application_status": {
        "submitted": _("待审核"),
        "info_requested": _("待补充材料"),
        "approved": _("已同意，待签协议"),
        "refused": _("未同意"),
        "withdrawn": _("已撤回"),
        "granted": _("已授权"),
        "interest": _("已登记商业开发意向"),
    },
    "application_action": {
        "submitted": _("提交申请"),
        "request_info": _("要求补充材料"),
        "answer": _("补充材料"),
        "approve": _("同意"),
        "refuse": _("不同意"),
        "withdraw": _("撤回"),
        "accept": _("接受协议"),
        "to_tender": _("转入竞争性配置"),
        "deadline_recounted": _("重新核定办理期限"),
        "granted": _("授权生效"),
        "tender_opened": _("已发布招标"),
        "awarded_by_tender": _("经招标取得授权"),
    },
    "purpose": {
        "innovation": _("创新发展"),
        "governance": _("城市治理"),
        "social": _("社会服务"),
        "research": _("科研教育"),
        "commercial": _("商业开发"),
    },
    "route": {
        "consent": _("提供方同意"),
        "research": _("科研教育"),
        "tender": _("竞争性配置（招标）"),
    },
    "tender_status": {
        "open": _("投标中"),
        "evaluating": _("评审中"),
        "failed": _("流标"),
        "awarded": _("已公示中标结果"),
        "concluded": _("已完成授权"),
        "cancelled": _("已终止"),
    },
    "tender_event": {
        "announced": _("发布招标公告"),
        "clarified": _("答疑"),
        "opened": _("截止并开标"),
        "failed": _("流标"),
        "reopened": _("重新招标"),
        "awarded": _("公示中标结果"),
        "objection": _("异议"),
        "concluded": _("完成授权"),
        "cancelled": _("终止"),
    },
    "bid_status": {
        "submitted": _("有效"),
        "replaced": _("已被新投标替换"),
        "withdrawn": _("已撤回"),
        "void": _("无效"),
    },
    "sandbox_status": {
        "queued": _("排队中"),
        "running": _("运行中"),
        "done": _("已完成"),
        "refused": _("未通过检查"),
        "failed": _("未能运行"),
    },
    "release_status": {
        "pending": _("待审核"),
        "approved": _("已同意发布"),
        "refused": _("已拒绝发布"),
    },
    "delivery": {
        "file": _("文件下载"),
        "sandbox": _("数据沙箱（数据不出域）"),
    },
    "grant_state": {
        "valid": _("有效"),
        "expired": _("已过期"),
        "revoked": _("已撤销"),
        "not_yet_valid": _("尚未生效"),
        "suspended": _("已暂停"),
    },
    # A column's type (the Frictionless name, portal.catalog.bundle.field_type of its Arrow type).
    "data_type": {
        "string": _("文本"),
        "integer": _("整数"),
        "number": _("小数"),
        "boolean": _("是/否"),
        "date": _("日期"),
        "datetime": _("日期时间"),
        "time": _("时间"),
        "any": _("其他"),
    },
    "restriction_decision": {"approved": _("已批准"), "rejected": _("已驳回")},
    "user_kind": {
        "citizen": _("个人"),
        "company": _("企业"),
        "researcher": _("科研人员"),
        "developer": _("开发者"),
    },
    "harvest_action": {
        "created": _("新增"),
        "updated": _("更新"),
        "unchanged": _("未变化"),
        "withdrawn": _("已撤回"),
        "held": _("暂缓"),
        "failed": _("失败"),
    },
    "harvest_status": {"running": _("进行中"), "finished": _("已完成"), "failed": _("失败")},
    "source_kind": {"ckan": _("CKAN 接口"), "spreadsheet": _("目录电子表格")},
    "page_kind": {
        "notice": _("公告"),
        "guide": _("使用指南"),
        "faq": _("常见问题"),
        "terms": _("服务条款"),
        "privacy": _("隐私政策"),
    },
    "showcase_status": {"pending": _("待审核"), "approved": _("已通过"), "rejected": _("不予展示")},
    "audit_action": {
        "harvest_source_registered": _("登记采集来源"),
        "dictionary_edited": _("修改数据项说明"),
        "upload_started": _("上传新版本"),
        "department_catalog_uploaded": _("上传部门目录表"),
        "department_catalog_confirmed": _("确认采集部门目录表"),
        "upload_published": _("发布上传的新版本"),
        "duplicate_sent": _("发出重复目录核对"),
        "duplicate_merge_proposed": _("建议合并重复目录"),
        "duplicate_merged": _("合并重复目录"),
        "duplicate_dismissed": _("说明不是重复目录"),
        "job_retried": _("重试后台任务"),
        "harvest_schedule_set": _("设置采集计划"),
        "harvest_run_queued": _("立即采集"),
        "harvest_dry_run_queued": _("试采集"),
        "secret_key_changed": _("更换平台密钥"),
        "application_submitted": _("提交数据申请"),
        "bid_replaced": _("替换投标"),
        "bid_scored": _("评分"),
        "bid_withdrawn": _("撤回投标"),
        "calendar_entered": _("录入节假日安排"),
        "company_verified": _("认证企业"),
        "data_request_answered": _("答复数据需求"),
        "data_request_routed": _("转交数据需求"),
        "data_requested": _("提出数据需求"),
        "dataset_published": _("重新发布数据集"),
        "dataset_withdrawn": _("撤回数据集"),
        "email_verified": _("验证邮箱"),
        "error_answered": _("答复纠错"),
        "error_reported": _("提交纠错"),
        "evaluator_declared_no_conflict": _("评审人声明无利害关系"),
        "grant_issued": _("授权生效"),
        "grant_revoked": _("撤销授权"),
        "licensed_download": _("授权下载"),
        "leak_checked": _("核查泄露文件来源"),
        "sandbox_query": _("提交沙箱查询"),
        "sandbox_settings": _("设置数据沙箱"),
        "sandbox_result": _("沙箱查询结果"),
        "sandbox_release_requested": _("申请发布沙箱结果"),
        "sandbox_release_decided": _("决定发布沙箱结果"),
        "sandbox_output_download": _("下载沙箱结果"),
        "login": _("登录"),
        "login_failed": _("登录失败"),
        "identity_linked": _("关联统一身份认证"),
        "identity_unlinked": _("解除关联统一身份认证"),
        "masking_set": _("设置脱敏"),
        "metadata_edited": _("修改元数据"),
        "password_reset": _("重设密码"),
        "reclassified": _("调整开放类型"),
        "register": _("注册"),
        "researcher_verified": _("认证科研人员"),
        "restriction_decided": _("审批限制开放"),
        "restriction_requested": _("申请限制开放"),
        "role_bureau_granted": _("任命大数据局管理员"),
        "role_curator_changed": _("任免部门管理员"),
        "sensitivity_set": _("设置涉密或隐私标记"),
        "tender_awarded": _("公示中标结果"),
        "tender_closed": _("截止并开标"),
        "tender_concluded": _("完成授权"),
        "tender_objection": _("提出异议"),
        "tender_opened": _("发布招标公告"),
        "tender_question": _("提问"),
        "tender_reopened": _("重新招标"),
        "token_created": _("创建 API 令牌"),
        "token_refused": _("拒绝无效令牌"),
        "token_revoked": _("撤销 API 令牌"),
        "token_used": _("使用 API 令牌"),
        "token_quota_changed": _("调整 API 令牌每日限额"),
        "usage_reported": _("报告利用情况"),
        "application_request_info": _("要求补充材料"),
        "application_answer": _("补充材料"),
        "application_approve": _("同意数据申请"),
        "application_refuse": _("不同意数据申请"),
        "application_withdraw": _("撤回数据申请"),
        "application_accept": _("接受协议"),
        "application_to_tender": _("数据申请转入竞争性配置"),
        "search_synonym_added": _("添加检索同义词"),
        "search_synonym_changed": _("修改检索同义词"),
        "search_synonym_removed": _("删除检索同义词"),
        "topic_saved": _("保存专题"),
        "page_saved": _("保存页面"),
        "showcase_submitted": _("提交成果展示"),
        "showcase_approved": _("成果展示通过审核"),
        "showcase_rejected": _("成果展示不予展示"),
    },
}


# The catalog's controlled values (GB/T 21063 data domains as the district uses them, update
# cycles, share classes): the department's words, shown in the reader's language. A value
# outside these lists is the department's own and stays as written.
VOCABULARY: dict[str, dict[str, Message]] = {
    "domain": {
        "教育文化": _("教育文化"),
        "医疗卫生": _("医疗卫生"),
        "交通运输": _("交通运输"),
        "市场监管": _("市场监管"),
        "自然资源": _("自然资源"),
        "民政服务": _("民政服务"),
        "文化旅游": _("文化旅游"),
        "社会保障": _("社会保障"),
        "城建住房": _("城建住房"),
        "农业农村": _("农业农村"),
        "生态环境": _("生态环境"),
        "公共安全": _("公共安全"),
        "财税金融": _("财税金融"),
        "信用服务": _("信用服务"),
        "经济建设": _("经济建设"),
        "科技创新": _("科技创新"),
        "安全生产": _("安全生产"),
        "气象服务": _("气象服务"),
        "机构团体": _("机构团体"),
    },
    "update_cycle": {
        "每日": _("每日"),
        "每周": _("每周"),
        "每月": _("每月"),
        "每季度": _("每季度"),
        "每半年": _("每半年"),
        "每年": _("每年"),
        "实时": _("实时"),
        "不定期": _("不定期"),
    },
    "share_class": {"无条件共享": _("无条件共享"), "有条件共享": _("有条件共享"), "不予共享": _("不予共享")},
}


def vocabulary(kind: str, value: object) -> Message | str:
    """A controlled catalog value in the reader's words; anything else as the department wrote it."""
    text = "" if value is None else str(value)
    return VOCABULARY.get(kind, {}).get(text, text)


def label(kind: str, code: object) -> Message | str:
    """The words for a stored code; "—" (and a warning in the log) for one without words."""
    key = "" if code is None else str(getattr(code, "value", code))
    table = LABELS.get(kind, {})
    if key in table:
        return table[key]
    if key or kind != "open_class":
        log.warning("no label for %s %r", kind, key)
    return "—"


def choices(kind: str) -> list[tuple[str, Message]]:
    """(code, words) pairs for a select field."""
    return [(code, words) for code, words in LABELS[kind].items() if code]
