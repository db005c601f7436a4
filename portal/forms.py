"""Forms (Flask-WTF: every form carries a CSRF token). OnceForm also refuses a second post of
the same rendered form (a double click, a reload after POST), with a clear message, by the
same record as web.done(): a FormSubmission row per done rendering."""

from __future__ import annotations

import secrets

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto  # "read the request's form" (formdata=None means "no form data")
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    Field,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from .errors import DomainError
from .messages import _
from .models import FormSubmission, UserKind


class OnceForm(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect checked the token before the view ran (the template puts it in)

    nonce = HiddenField(default=lambda: secrets.token_urlsafe(12))

    def validate_nonce(self, field: Field) -> None:
        from .web import db

        if not field.data:
            raise ValidationError(_("表单已失效，请刷新后重试"))  # type: ignore[arg-type]  # a lazy Message, str()ed when shown
        if db().get(FormSubmission, field.data[:32]) is not None:
            raise ValidationError(_("此表单已提交过，未重复处理"))  # type: ignore[arg-type]  # as above

    def consume(self) -> None:
        """Record this rendering of the form as used (after its work was committed)."""
        from sqlalchemy.exc import IntegrityError

        from .web import db

        s = db()
        s.add(FormSubmission(nonce=(self.nonce.data or "")[:32]))
        try:
            s.commit()
        except IntegrityError:  # the other post of it recorded it first
            s.rollback()


class RegisterForm(OnceForm):
    email = StringField(_l("邮箱"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("姓名或称呼"), validators=[DataRequired(), Length(max=100)])
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("再次输入密码"),
        validators=[DataRequired(), EqualTo("password", _("两次输入的密码不一致"))],  # type: ignore[arg-type]  # Message: lazy, and WTForms's `%` fills it
    )
    kind = SelectField(
        _l("用户类型"),
        choices=[(k.value, k.label) for k in UserKind],  # type: ignore[misc]  # lazy Message labels, escaped when shown
        default=UserKind.CITIZEN.value,
    )
    company_name = StringField(_l("企业名称"), validators=[Optional(), Length(max=200)])
    credit_code = StringField(_l("统一社会信用代码"), validators=[Optional(), Length(max=30)])
    institution = StringField(_l("所在高校或科研机构"), validators=[Optional(), Length(max=200)])


class LoginForm(FlaskForm):
    class Meta:
        csrf = False

    email = StringField(_l("邮箱"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=200)])


class EmailForm(OnceForm):
    email = StringField(_l("邮箱"), validators=[DataRequired(), Length(max=254)])


class NewPasswordForm(OnceForm):
    password = PasswordField(_l("新密码"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("再次输入新密码"),
        validators=[DataRequired(), EqualTo("password", _("两次输入的密码不一致"))],  # type: ignore[arg-type]  # as in RegisterForm
    )


class TokenForm(OnceForm):
    name = StringField(_l("令牌名称"), validators=[DataRequired(), Length(max=100)])
    days = SelectField(
        _l("有效期"), choices=[("30", _l("30 天")), ("90", _l("90 天")), ("365", _l("365 天"))], default="90"
    )


class CuratorForm(FlaskForm):
    class Meta:
        csrf = False

    department = SelectField(_l("部门"), choices=[], validate_choice=False)


class TokenQuotaForm(FlaskForm):
    """The bureau's quota for one API token (calls a day); empty: the portal's default."""

    class Meta:
        csrf = False  # post_form carries the token; CSRFProtect checks it once

    quota = IntegerField(_l("每日限额"), validators=[Optional(), NumberRange(min=1, max=100_000_000)])


# ---------------------------------------------------------------------- every other form of the portal
#
# One class per form; the view reads `form.<field>.data`, never request.form. The domain
# services keep the rules (a refusal's reasons, a score's range): these classes parse and type
# what was posted. CSRF is checked once, by CSRFProtect before any view runs, so these forms do
# not check it again (the templates put the token in with the post_form macro, _forms.html).


class Form(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect (portal/views/__init__.py) checked the token before the view ran


class FormError(DomainError):
    """What was posted does not parse: every field in error, named, in one message."""


def checked(form: FlaskForm) -> FlaskForm:
    """The posted form, or a FormError naming every field in error (the one error handler
    shows it on the page the form was on)."""
    if form.validate():
        return form
    problems = [
        f"{form[name].label.text}：{'；'.join(str(e) for e in errors)}"
        for name, errors in form.errors.items()
    ]
    raise FormError("；".join(problems))


def with_ids(form: FlaskForm, suffix: object) -> FlaskForm:
    """The same form repeated on a page (one per grant, per row): ids made unique, names kept."""
    for field in form:
        field.id = field.label.field_id = f"{field.name}{suffix}"
    return form


def _date(label: str) -> DateField:
    return DateField(_l(label), validators=[Optional()], format="%Y-%m-%d")


class ErrorReportForm(Form):
    text = TextAreaField(_l("报告疑义或错误"), id="err", validators=[Length(max=5000)])


class ObjectionForm(Form):
    text = TextAreaField(_l("提出异议"), id="objection", validators=[Length(max=5000)])


class AnswerForm(Form):
    answer = TextAreaField(_l("答复"), validators=[Length(max=5000)])


class WithdrawForm(Form):
    reason = StringField(_l("撤回原因"), id="w_reason", validators=[Length(max=2000)])


class RevokeForm(Form):
    reason = TextAreaField(_l("撤销理由"), validators=[Length(max=2000)])


# the console


class ReclassifyForm(Form):
    open_class = SelectField(
        _l("开放类型"),
        choices=[
            ("unconditional", _l("无条件开放")),
            ("conditional", _l("有条件开放")),
            ("not_open", _l("不予开放")),
        ],
        validate_choice=False,
    )
    legal_basis = TextAreaField(_l("法律依据"), validators=[Length(max=2000)])
    open_conditions = TextAreaField(_l("开放条件"), validators=[Length(max=2000)])
    reason = StringField(_l("说明"), validators=[Length(max=2000)])


class SensitiveForm(Form):
    sensitive = BooleanField(_l("涉及国家秘密、商业秘密或个人隐私"))


class EditForm(Form):
    title = StringField(_l("名称"), validators=[Length(max=500)])
    summary = TextAreaField(_l("摘要"), validators=[Length(max=5000)])
    domain = StringField(_l("数据领域"), validators=[Length(max=100)])
    title_en = StringField(_l("英文名称"), validators=[Length(max=500)])
    summary_en = TextAreaField(_l("英文摘要"), validators=[Length(max=5000)])
    tags = StringField(_l("关键词（逗号分隔）"), validators=[Length(max=1000)])

    def changes(self) -> dict:
        tags = [t.strip() for t in (self.tags.data or "").replace("，", ",").split(",") if t.strip()]
        return {
            "title": self.title.data or "",
            "summary": self.summary.data or "",
            "domain": self.domain.data or "",
            "title_en": self.title_en.data or "",
            "summary_en": self.summary_en.data or "",
            "tags": tags,
        }


MASK_CHOICES = [("", _l("不处理")), ("partial", _l("部分遮蔽（如 139****5678）")), ("drop", _l("删除该列"))]


def masking_form(columns: list[dict], formdata: object = _Auto) -> Form:
    """One select per column that holds personal information (its name: mask:<column>)."""
    fields = {
        f"mask:{c['column']}": SelectField(
            c["column"], choices=MASK_CHOICES, default=c.get("method") or "", validate_choice=False
        )
        for c in columns
    }
    return type("MaskingForm", (Form,), fields)(formdata=formdata)


def masking_methods(form: Form) -> dict[str, str]:
    return {
        name.removeprefix("mask:"): field.data or ""
        for name, field in form._fields.items()
        if name.startswith("mask:")
    }


# the bureau


class RestrictionDecisionForm(Form):
    decision = StringField(_l("决定"))
    note = StringField(_l("意见"), validators=[Length(max=2000)])


class CalendarForm(Form):
    year = IntegerField(
        _l("年份"),
        validators=[DataRequired(_l("请填写年份")), NumberRange(2000, 2100, _l("年份须在 2000–2100 之间"))],
    )
    holidays = TextAreaField(_l("放假日期（每行或以空格分隔，YYYY-MM-DD）"), validators=[Length(max=5000)])
    workdays = TextAreaField(_l("调休上班日期"), validators=[Length(max=5000)])


HOURS = [(str(h), f"{h:02d}:00") for h in range(24)]
WEEKDAYS = [
    ("0", _l("星期一")),
    ("1", _l("星期二")),
    ("2", _l("星期三")),
    ("3", _l("星期四")),
    ("4", _l("星期五")),
    ("5", _l("星期六")),
    ("6", _l("星期日")),
]


class HarvestScheduleForm(Form):
    schedule = SelectField(_l("采集计划"), choices=[])
    hour = SelectField(_l("时间（北京时间）"), choices=HOURS, default="2")
    weekday = SelectField(_l("每周的哪一天"), choices=WEEKDAYS, default="0")
    enabled = BooleanField(_l("启用计划"), default=True)
    token = PasswordField(_l("CKAN 访问令牌（留空则不变）"), validators=[Optional(), Length(max=500)])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        from .labels import choices

        self.schedule.choices = choices("harvest_schedule")  # type: ignore[assignment]  # lazy Message labels, escaped when shown


class HarvestSourceForm(HarvestScheduleForm):
    kind = SelectField(
        _l("来源类型"),
        choices=[("ckan", _l("CKAN 共享平台接口")), ("spreadsheet", _l("部门目录表（XLSX/CSV）"))],
    )
    title = StringField(_l("名称"), validators=[DataRequired(_l("请填写名称")), Length(max=200)])
    location = StringField(_l("CKAN 接口地址"), validators=[Optional(), Length(max=500)])


class SynonymForm(Form):
    term = StringField(_l("群众常用说法"), validators=[DataRequired(_l("请填写检索词")), Length(max=50)])
    expansions = TextAreaField(
        _l("对应的规范用词（每行一个，或以顿号、逗号分隔）"),
        validators=[DataRequired(_l("请填写规范用词")), Length(max=1000)],
    )


def _at_least_one(field: Field) -> None:
    """DataRequired would mark every checkbox `required`, and the browser would then refuse the
    form unless all of them were ticked: this checks on the server only."""
    if not field.data:
        raise ValidationError(_("请至少选择一个数据集"))  # type: ignore[arg-type]  # a lazy Message


class TenderForm(Form):
    title = StringField(_l("招标名称"), validators=[Length(max=300)])
    # The bureau ticks the datasets by title (choices: the conditional datasets now public,
    # set by the view); a name not among them is refused by the field.
    datasets = SelectMultipleField(
        _l("招标范围（有条件开放数据集）"),
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[lambda _form, field: _at_least_one(field)],
    )
    licence_months = IntegerField(
        _l("授权期限（月）"),
        default=12,
        validators=[DataRequired(_l("请填写")), NumberRange(1, 120, _l("须为 1–120"))],
    )
    territory = StringField(_l("授权地域"), default="东昌府区", validators=[Length(max=200)])
    qualifications = TextAreaField(
        _l("资格条件"), default="依法设立的企业，具备数据安全管理制度", validators=[Length(max=2000)]
    )
    opens_at = DateTimeLocalField(
        _l("投标开始（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[DataRequired(_l("请填写日期和时间"))]
    )
    closes_at = DateTimeLocalField(
        _l("投标截止（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[DataRequired(_l("请填写日期和时间"))]
    )
    min_bids = IntegerField(
        _l("最少有效投标数"),
        default=2,
        validators=[DataRequired(_l("请填写")), NumberRange(1, 50, _l("须为 1–50"))],
    )

    def dataset_names(self) -> list[str]:
        return list(self.datasets.data or [])


# tenders


class QuestionForm(Form):
    question = TextAreaField(_l("提问"), validators=[Length(max=5000)])


class BidForm(Form):
    plan = TextAreaField(_l("开发方案"), validators=[Length(max=20000)])
    security = TextAreaField(_l("安全保障能力"), validators=[Length(max=20000)])
    public_value = TextAreaField(_l("公共价值"), validators=[Length(max=20000)])
    price = StringField(_l("报价（万元）"), validators=[Length(max=100)])


class ReopenForm(Form):
    opens_at = DateTimeLocalField(
        _l("投标开始（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[DataRequired(_l("请填写日期和时间"))]
    )
    closes_at = DateTimeLocalField(
        _l("投标截止（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[DataRequired(_l("请填写日期和时间"))]
    )


class DeclareForm(Form):
    no_conflict = BooleanField(_l("本人声明与各投标人无利害关系"))


def score_form(criteria: list[dict], formdata: object = _Auto) -> Form:
    """One score (0–100) per criterion of the tender (its name: the criterion's key)."""
    fields = {
        c["key"]: FloatField(
            f"{c['name']}（{c['weight']}%）",
            validators=[InputRequired(_l("请填写分数")), NumberRange(0, 100, _l("分数须为 0–100 的数字"))],
        )
        for c in criteria
    }
    return type("ScoreForm", (Form,), fields)(formdata=formdata)


# licensing


class VersionForm(Form):
    """A step on an application: the version the person saw (a step on a changed one is refused)."""

    version = IntegerField(default=0, validators=[Optional()])


class InfoAnswerForm(VersionForm):
    text = TextAreaField(_l("补充材料"), validators=[Length(max=10000)])


class AcceptForm(VersionForm):
    agree = BooleanField(_l("我已阅读并同意协议全部条款"))
    agreement_sha256 = HiddenField()


def decision_form(items: list, formdata: object = _Auto) -> Form:
    """The curator's decision on an application: per item (dataset) the approved fields or all
    of them, and a row filter (a column and its allowed values)."""
    fields: dict = {
        "decision": StringField(_l("决定")),
        "note": TextAreaField(_l("意见（不同意的须说明理由）"), validators=[Length(max=5000)]),
        "valid_from": _date("授权自"),
        "valid_until": _date("至"),
        "version": IntegerField(default=0, validators=[Optional()]),
    }
    for item in items:
        fields[f"all_{item.id}"] = BooleanField(_l("按申请的字段授权"))
        fields[f"fields_{item.id}"] = SelectMultipleField(_l("字段"), choices=[], validate_choice=False)
        fields[f"filter_column_{item.id}"] = StringField(
            _l("只提供部分行：字段"), validators=[Length(max=200)]
        )
        fields[f"filter_values_{item.id}"] = StringField(
            _l("取值（逗号分隔）"), validators=[Length(max=5000)]
        )
    return type("DecisionForm", (VersionForm,), fields)(formdata=formdata)


def apply_form(datasets: list, formdata: object = _Auto) -> Form:
    """An application for one or more conditional datasets: per dataset all fields or some."""
    fields: dict = {
        "purpose": SelectField(_l("用途类别"), choices=[], validate_choice=False),
        "scenario": TextAreaField(_l("使用场景"), validators=[Length(max=10000)]),
        "security": TextAreaField(_l("安全保护措施"), validators=[Length(max=10000)]),
        "period_from": _date("使用期限自"),
        "period_until": _date("至"),
    }
    for ds in datasets:
        fields[f"all_fields_{ds.name}"] = BooleanField(_l("全部字段"))
        fields[f"fields_{ds.name}"] = SelectMultipleField(_l("字段"), choices=[], validate_choice=False)
    return type("ApplyForm", (Form,), fields)(formdata=formdata)


class UsageReportForm(Form):
    what = TextAreaField(_l("开发利用了什么"), validators=[Length(max=10000)])
    where = StringField(_l("数据出现在何处"), validators=[Length(max=2000)])


# the public's voice


class RatingForm(Form):
    stars = IntegerField(_l("评分"), validators=[Optional()])
    comment = StringField(_l("评论"), validators=[Length(max=2000)])


class DataRequestForm(Form):
    title = StringField(_l("需要的数据"), id="r_title", validators=[Length(max=300)])
    description = TextAreaField(_l("用途和需要的内容"), id="r_desc", validators=[Length(max=5000)])


class RouteForm(Form):
    department = SelectField(_l("部门"), choices=[], validate_choice=False)


class ShowcaseForm(Form):
    title = StringField(_l("名称"), id="s_title", validators=[Length(max=300)])
    description = TextAreaField(_l("介绍"), id="s_desc", validators=[Length(max=5000)])
    url = StringField(_l("网址"), id="s_url", validators=[Length(max=2000)])
    attribution = StringField(_l("数据来源和获取日期"), id="s_attr", validators=[Length(max=2000)])
    author = StringField(_l("作者或团队（公开显示）"), id="s_author", validators=[Length(max=100)])
    licence_number = StringField(
        _l("授权编号（使用有条件开放数据时）"), id="s_lic", validators=[Length(max=100)]
    )


class ShowcaseReviewForm(Form):
    reason = TextAreaField(_l("理由（不予展示时必填）"), validators=[Length(max=2000)])


class TopicForm(Form):
    slug = StringField(_l("标识（网址中使用）"), validators=[Length(max=60)])
    title = StringField(_l("专题名称"), validators=[Length(max=200)])
    title_en = StringField(_l("英文名称"), validators=[Length(max=200)])
    description = TextAreaField(_l("专题介绍"), validators=[Length(max=5000)])
    description_en = TextAreaField(_l("英文介绍"), validators=[Length(max=5000)])
    position = IntegerField(
        _l("排序（数字小的在前）"), default=0, validators=[Optional(), NumberRange(0, 9999)]
    )
    published = BooleanField(_l("公开"))


class PageForm(Form):
    kind = SelectField(_l("页面类型"), choices=[], validate_choice=False)
    title = StringField(_l("中文标题"), validators=[Length(max=200)])
    body = TextAreaField(_l("中文正文（Markdown）"), validators=[Length(max=50000)])
    title_en = StringField(_l("英文标题"), validators=[Length(max=200)])
    body_en = TextAreaField(_l("英文正文（Markdown）"), validators=[Length(max=50000)])
    published = BooleanField(_l("公开"), default=True)
