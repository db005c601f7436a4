"""Forms (Flask-WTF: every form carries a CSRF token). OnceForm also refuses a second post of
the same rendered form (a double click, a reload after POST), with a clear message."""
from __future__ import annotations

import secrets

from flask import session
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from .models import UserKind

USED_NONCES = "used_form_nonces"


class OnceForm(FlaskForm):
    nonce = HiddenField(default=lambda: secrets.token_urlsafe(12))

    def validate_nonce(self, field) -> None:  # noqa: ANN001
        if not field.data:
            raise ValidationError("表单已失效，请刷新后重试 / the form expired: reload and try again")
        if field.data in session.get(USED_NONCES, []):
            raise ValidationError("此表单已提交过，未重复处理 / this form was already submitted; nothing was done twice")

    def consume(self) -> None:
        """Mark this rendering of the form as used (after it succeeded)."""
        used = session.get(USED_NONCES, [])
        session[USED_NONCES] = [*used[-49:], self.nonce.data]


class RegisterForm(OnceForm):
    email = StringField(_l("邮箱"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("姓名或称呼"), validators=[DataRequired(), Length(max=100)])
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("再次输入密码"), validators=[DataRequired(), EqualTo("password", "两次输入的密码不一致 / the passwords differ")])
    kind = SelectField(_l("用户类型"), choices=[(k.value, _l(k.label_zh)) for k in UserKind], default=UserKind.CITIZEN.value)
    company_name = StringField(_l("企业名称"), validators=[Optional(), Length(max=200)])
    credit_code = StringField(_l("统一社会信用代码"), validators=[Optional(), Length(max=30)])
    institution = StringField(_l("所在高校或科研机构"), validators=[Optional(), Length(max=200)])


class LoginForm(FlaskForm):
    email = StringField(_l("邮箱"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=200)])


class EmailForm(OnceForm):
    email = StringField(_l("邮箱"), validators=[DataRequired(), Length(max=254)])


class NewPasswordForm(OnceForm):
    password = PasswordField(_l("新密码"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("再次输入新密码"), validators=[DataRequired(), EqualTo("password", "两次输入的密码不一致 / the passwords differ")])


class TokenForm(OnceForm):
    name = StringField(_l("令牌名称"), validators=[DataRequired(), Length(max=100)])
    days = SelectField(_l("有效期"), choices=[("30", _l("30 天")), ("90", _l("90 天")), ("365", _l("365 天"))], default="90")


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class CuratorForm(FlaskForm):
    department = SelectField(_l("部门"), choices=[], validate_choice=False)
