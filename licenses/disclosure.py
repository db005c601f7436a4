"""Queries in the data sandbox and statistical disclosure control (issue 21: 可用不可见).

A query goes through three gates, and only the third's output leaves:

1. `check_query` parses the SQL (sqlglot, DuckDB dialect) and accepts only what is on an
   allowlist: one SELECT from the table `data`, without joins, subqueries, CTEs, set
   operations, window functions, table functions or HAVING (a condition on an aggregate
   binary-searches a withheld or near-threshold value: filter the output after downloading
   it); every output a group key or one of COUNT(*), COUNT(DISTINCT col), SUM(col), AVG(col),
   each on its own (no arithmetic on aggregates, no FILTER clause). COUNT(col) is refused
   (beside COUNT(*) it gives the column's NULLs by subtraction, below k: write COUNT(*) with
   `col IS NOT NULL` in WHERE). Aggregates that return a record's own value (MIN, MAX,
   string_agg, list, first, median …) are refused with their own message. Identifier columns
   (sandbox_engine.SandboxColumn.identifier) may only be counted distinct. An aggregate's
   argument is one column: a condition inside it (SUM(CASE WHEN … THEN x END)) would subtract
   one record between two queries over the same rows, which the differencing check compares
   by rows; conditions belong in WHERE, where they are compared. Every CAST becomes TRY_CAST;
   a date literal that does not read, and a date_trunc unit off the list, are refused now.
2. `run_query` runs SQL generated from the checked tree (never the user's text) on the locked
   connection (sandbox_engine.locked: read-only, no files, no extensions, no settings,
   memory and time limits). Every user expression runs under TRY(…) and WHERE as
   TRY(CAST(… AS BOOLEAN)): what cannot be computed for a record (an implicit cast of a text
   value, an overflow, a division by zero, a substring offset out of range) is NULL, so no
   record's value can make a query fail — a failure would quote the value, and its mere
   occurrence would answer a yes/no question. Whatever still fails in DuckDB (a type error
   found before any row is read) is refused with one fixed message; DuckDB's text is kept in
   QueryRefused.detail for the department and the bureau, never in the message. Hidden
   columns per group: the records behind it, the sum of their record keys (the cell key) and,
   for each SUM/AVG, its two largest absolute contributions, the sum of absolute values, the
   number of non-zero contributors (and for AVG its sum and count).
3. Statistical disclosure control, per group and cell:
   - small: a group of fewer than k records is left out of the holder's output altogether —
     no row, no suppressed cell, no count of rows left out (Outcome.dropped and the tail of
     Outcome.rows are for the department only): a withheld row would say that the group
     exists and, with a WHERE, what one person's value is. A COUNT(DISTINCT) below k, and a
     SUM or AVG with fewer than k non-zero contributors, are withheld;
   - dominance: a SUM or AVG whose two largest contributions exceed 85 % of the sum of
     absolute values (the (2, 85 %) rule) is withheld;
   - differencing, pairwise: a group whose records differ from a released cell of an earlier
     query by 1 … k−1 records is withheld (the difference would be those records' values);
     the key stays, the group having at least k records;
   - secondary: a column of the shown rows with exactly one withheld cell has its smallest
     released cell withheld too;
   - perturbation (the cell-key method of the Australian Bureau of Statistics' TableBuilder,
     made for flexible tables and differencing): every record carries a hidden uniform random
     16-bit key (sandbox_engine.RECORD_KEY, drawn from the OS's CSPRNG when the table is
     built, never nameable in a query); a cell's key is the sum of its records' keys mod 2¹⁶,
     and through the perturbation table `PERTURBATION` (d = 0: 0.40, ±1: 0.20 each, ±2: 0.07
     each, ±3: 0.03 each; zero mean, variance 1.5) it gives the cell's noise. COUNT(*) and
     COUNT(DISTINCT) are released as count + d (≥ 1; released counts are ≥ k anyway); SUM as
     sum + d′ × SUM_SCALE (0.5) × the cell's largest absolute contribution (noise of the size
     of one record's value, so a difference of sums does not give a record's value); AVG as
     the perturbed sum over the perturbed count. d and each SUM's d′ are separate draws (the
     cell key hashed with the statistic's name). The same set of records always draws the same
     noise, whatever the query that selects it, so repeating or rephrasing a query and
     averaging does not remove it; different sets draw independent noise. Outcome.rows keeps
     the raw values for the department; safe_rows carry the perturbed ones.
   What the perturbation protects against: differencing by any linear combination of released
   cells — total minus released parts, partitions with one record moved or left out, triangles
   of overlapping lists — now gives the small cell's value only give or take the accumulated
   noise of every cell used, not exactly. What it does not do: it reduces the risk, it does not
   remove it (a combination can cancel the noise by chance, about one time in five for three
   cells, and the attacker cannot tell when; large values stay roughly visible; whether a group
   reaches k is still answered by its presence). The k threshold, dominance, pairwise
   differencing, the rate limits and the department's release review all stay.
   Ordering and LIMIT are applied to the shown rows, after suppression and perturbation,
   withheld values sorting last: the position of a row says nothing about what is withheld.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from portal.messages import Message, _

from .sandbox_engine import (
    KEY_SPACE,
    MEMORY_LIMIT,
    RECORD_KEY,
    QueryRefused,
    SandboxColumn,
    TableInfo,
    build_table,
    locked,
    read_table_info,
)

__all__ = [
    "Outcome",
    "Plan",
    "Prior",
    "QueryRefused",
    "SandboxColumn",
    "TableInfo",
    "build_table",
    "check_query",
    "read_table_info",
    "run_query",
]

DIALECT = "duckdb"
# Earlier queries over the same groups answered inside the main query (a filtered count each);
# more of them are compared by a query of their own.
MERGED_PRIORS = 32
DOMINANCE_SHARE = 0.85  # the (2, 85 %) rule: two contributions above this share of the total
# The perturbation table (cell-key method): d → probability. Zero mean, variance 1.5, |d| ≤ 3.
PERTURBATION: tuple[tuple[int, float], ...] = (
    (-3, 0.03), (-2, 0.07), (-1, 0.20), (0, 0.40), (1, 0.20), (2, 0.07), (3, 0.03),
)  # fmt: skip
# A SUM cell moves by d × SUM_SCALE × its largest absolute contribution: up to 1.5 times the
# largest record's value, so a difference of sums never gives one record's value exactly.
SUM_SCALE = 0.5
ALLOWED_AGGREGATES = "COUNT(*)、COUNT(DISTINCT 列)、SUM(列)、AVG(列)"
ALLOWED_FUNCTIONS = (
    "year、month、quarter、day、dayofweek、date_trunc、substr、left、right、upper、lower、length、"
    "trim、round、floor、ceil、abs、coalesce、CASE WHEN、CAST（按 TRY_CAST 执行）"
)

# ----------------------------------------------------------------------------- the allowlist

_SCALAR_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In,
    exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod,
    exp.Neg, exp.Case, exp.If, exp.Cast, exp.Year, exp.Month, exp.Quarter, exp.Day, exp.DayOfWeek,
    exp.TimestampTrunc, exp.DateTrunc, exp.Substring, exp.Left, exp.Right, exp.Upper, exp.Lower,
    exp.Length, exp.Trim, exp.Round, exp.Floor, exp.Ceil, exp.Abs, exp.Coalesce,
)  # fmt: skip
_TRUNCATIONS = (exp.TimestampTrunc, exp.DateTrunc)  # their unit (month, year …) is a bare word
_UNITS = {"YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND"}
_CAST_TYPES = {
    exp.DataType.Type.INT, exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.DOUBLE,
    exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL, exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT,
    exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.BOOLEAN,
}  # fmt: skip
# A literal cast to these is read now: a mistyped date is said, not answered with nothing.
_LITERAL_PARSERS = {
    exp.DataType.Type.DATE: dt.date.fromisoformat,
    exp.DataType.Type.TIMESTAMP: dt.datetime.fromisoformat,
    exp.DataType.Type.TIMESTAMPNTZ: dt.datetime.fromisoformat,
}
_AGGREGATES: dict[type[exp.Expression], str] = {exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg"}
# Aggregates whose result is the value of one record (or a list of them).
_RECORD_VALUE_NAMES = {
    "min", "max", "arg_min", "arg_max", "argmin", "argmax", "min_by", "max_by", "string_agg",
    "group_concat", "listagg", "list", "array_agg", "first", "last", "any_value", "arbitrary",
    "median", "mode", "quantile", "quantile_cont", "quantile_disc", "percentile_cont",
    "percentile_disc", "approx_quantile", "histogram", "reservoir_quantile", "bitstring_agg",
}  # fmt: skip
_SELECT_PARTS = {"expressions", "from_", "where", "group", "order", "limit", "offset"}
_STATEMENT_WORDS: dict[type, str] = {
    exp.Set: "SET", exp.Pragma: "PRAGMA", exp.Attach: "ATTACH", exp.Copy: "COPY", exp.Install: "INSTALL",
}  # fmt: skip


_WRAPPERS = (exp.IgnoreNulls, exp.RespectNulls, exp.WithinGroup)
FILTER_REFUSED = _(
    "不允许在聚合函数后使用 FILTER (WHERE …)：条件请写在 WHERE 中，需要几种条件的结果时请分别查询。"
)


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__.lower()


def _refused_node(node: exp.Expression) -> QueryRefused:
    """Why this piece of SQL is not on the allowlist, in words that say what to do instead."""
    if isinstance(node, exp.Filter):
        return QueryRefused(FILTER_REFUSED)
    if isinstance(node, _WRAPPERS) and isinstance(node.this, exp.Expression):
        return _refused_node(node.this)  # any_value(x) parses as IGNORE NULLS around it
    name = _function_name(node)
    if name in _RECORD_VALUE_NAMES or isinstance(node, exp.ArrayAgg | exp.GroupConcat | exp.AnyValue):
        return QueryRefused(
            _(
                "不允许使用 %(name)s：它输出的是单条记录的值（或值的列表），沙箱只放行汇总结果。"
                "请改用 %(allowed)s。",
                name=name.upper(),
                allowed=ALLOWED_AGGREGATES,
            )
        )
    if isinstance(node, exp.Window):
        return QueryRefused(_("不允许使用窗口函数（OVER …）：它按记录输出结果。请用 GROUP BY 汇总。"))
    if isinstance(node, exp.Subquery | exp.Select | exp.Exists | exp.Query):
        return QueryRefused(_("不允许使用子查询：只能直接查询表 data。请把条件写在 WHERE 中。"))
    if isinstance(node, exp.Star):
        return QueryRefused(
            _("不允许 SELECT *：它输出单条记录。请只选择分组列和 %(allowed)s。", allowed=ALLOWED_AGGREGATES)
        )
    if isinstance(node, exp.AggFunc):
        return QueryRefused(_("不允许使用聚合函数 %(name)s；可用的聚合：%(allowed)s。", name=name.upper(),
                              allowed=ALLOWED_AGGREGATES))  # fmt: skip
    if isinstance(node, exp.Func):
        return QueryRefused(
            _("不允许使用函数 %(name)s；可用的函数：%(allowed)s。", name=name, allowed=ALLOWED_FUNCTIONS)
        )
    return QueryRefused(_("不允许的写法：%(sql)s", sql=node.sql(dialect=DIALECT)[:200]))


# ----------------------------------------------------------------------------- the plan


@dataclass
class Output:
    label: str
    kind: str  # "key" | "count" | "count_distinct" | "sum" | "avg"
    expr: str  # generated SQL
    column: str | None = None  # the aggregated column (SUM, AVG: the dominance rule reads it)


@dataclass
class Plan:
    """A checked query: every part is SQL generated from the checked tree."""

    sql: str  # the text as written, for the record
    where: str | None
    group_by: list[str]
    outputs: list[Output] = field(default_factory=list)
    having: str | None = None  # never set (HAVING is refused); kept so stored plans still load
    order_by: list[tuple[int, bool]] = field(default_factory=list)  # (output index, descending)
    limit: int | None = None
    offset: int = 0

    @property
    def columns(self) -> list[str]:
        return [o.label for o in self.outputs]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Plan:
        data = dict(d)
        data["outputs"] = [Output(**o) for o in d.get("outputs", [])]
        data["order_by"] = [(int(i), bool(desc)) for i, desc in d.get("order_by", [])]
        return cls(**data)


@dataclass
class _Context:
    info: TableInfo
    alias: str | None
    where: Message | str  # for messages: 分组, 筛选, 排序 …
    output: bool = False  # an output column (an aggregate inside it is arithmetic on aggregates)


def _column(node: exp.Column, ctx: _Context) -> SandboxColumn:
    """The table's column a reference names; the reference is rewritten to its exact, quoted
    name without a table qualifier."""
    qualifier = node.table
    if qualifier and qualifier.lower() not in {"data", (ctx.alias or "data").lower()}:
        raise QueryRefused(_("只能查询表 data：不能引用「%(name)s」。", name=qualifier))
    col = ctx.info.column(node.name)
    if col is None:
        raise QueryRefused(
            _(
                "表 data 没有列「%(name)s」；可用的列：%(columns)s。",
                name=node.name,
                columns="、".join(c.name for c in ctx.info.columns),
            )
        )
    node.set("table", None)
    node.set("db", None)
    node.set("catalog", None)
    node.set("this", exp.to_identifier(col.name, quoted=True))
    return col


def _identifier_refused(col: SandboxColumn, where: Message | str) -> QueryRefused:
    why = _("含个人信息") if col.reason == "personal" else _("几乎每条记录的值都不同，可识别单条记录")
    return QueryRefused(
        _(
            "列「%(name)s」%(why)s，只能在 COUNT(DISTINCT …) 中计数，不能用于%(where)s。",
            name=col.name,
            why=why,
            where=where,
        )
    )


def _misplaced_aggregate(node: exp.Expression, ctx: _Context) -> QueryRefused:
    if isinstance(node, exp.Filter):
        return QueryRefused(FILTER_REFUSED)
    if ctx.output:
        return QueryRefused(
            _(
                "不允许对汇总结果做运算或再套函数（如 AVG(x)*COUNT(*)、ROUND(AVG(x), 2)）：COUNT、SUM、AVG "
                "只能各自单独作为一个输出列。请分别输出，导出后再计算。"
            )
        )
    return QueryRefused(
        _(
            "%(where)s中不能使用汇总函数 %(name)s：条件只能针对单条记录，写在 WHERE 中；对汇总结果的筛选请在导出后进行。",
            where=ctx.where,
            name=_function_name(node).upper(),
        )
    )


def _literal_cast(node: exp.Cast) -> None:
    """A date or time literal (DATE '2025-02-13', '2025-02-13'::DATE) that does not read is
    refused now; it would otherwise select nothing (every cast runs as TRY_CAST)."""
    parse = _LITERAL_PARSERS.get(node.to.this)
    literal = node.this
    if parse is None or not (isinstance(literal, exp.Literal) and literal.is_string):
        return
    try:
        parse(literal.this)
    except ValueError:
        raise QueryRefused(
            _(
                "日期或时间写法不正确：「%(value)s」（应为 2025-02-13 或 2025-02-13 08:30:00）。",
                value=literal.this[:40],
            )
        ) from None


def _unit(node: exp.Expression) -> bool:
    """date_trunc's unit: a bare word from the list (sqlglot reads any word there, even a
    column's name, as the unit)."""
    if not (isinstance(node, exp.Var) and isinstance(node.parent, _TRUNCATIONS)):
        return False
    if node.name.upper() not in _UNITS:
        raise QueryRefused(
            _(
                "date_trunc 的单位只能是 %(units)s 之一，不能是「%(unit)s」。",
                units="、".join(u.lower() for u in sorted(_UNITS)),
                unit=node.name[:40],
            )
        )
    return True


def _try_cast(node: exp.Expression) -> exp.Expression:
    """CAST → TRY_CAST, except a date or time literal's (read by _literal_cast already: a
    constant, and a plain CAST lets DuckDB prune by it)."""
    if type(node) is not exp.Cast or (
        isinstance(node.this, exp.Literal) and node.to.this in _LITERAL_PARSERS
    ):
        return node
    return exp.TryCast(this=node.this, to=node.to)


def _checked(node: exp.Expression, ctx: _Context, *, condition: bool = False) -> exp.Expression:
    """A scalar expression checked, every CAST made TRY_CAST, and the whole under TRY(…)
    unless it cannot fail (`_kind`); a condition is also cast to BOOLEAN under TRY. What cannot
    be computed for a record is NULL, never an error: a conversion error would quote the
    value, and its occurrence alone would answer a yes/no question about a record."""
    _scalar(node, ctx)
    node = node.transform(_try_cast, copy=False)
    kind = _kind(node, ctx.info)
    if (kind == "bool") if condition else (kind is not None):
        return node
    if condition:
        node = exp.Cast(this=exp.Paren(this=node), to=exp.DataType.build("BOOLEAN"))
    return exp.Anonymous(this="TRY", expressions=[node])


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_DATE_PARTS = (exp.Year, exp.Month, exp.Quarter, exp.Day, exp.DayOfWeek)
_TEXT_FUNCTIONS = (exp.Upper, exp.Lower, exp.Trim)
_CAST_KINDS = {
    exp.DataType.Type.DATE: "date", exp.DataType.Type.TIMESTAMP: "date", exp.DataType.Type.TIMESTAMPNTZ: "date",
    exp.DataType.Type.VARCHAR: "text", exp.DataType.Type.TEXT: "text", exp.DataType.Type.BOOLEAN: "bool",
}  # fmt: skip


def _comparable(a: str | None, b: str | None) -> bool:
    """A string literal converts to the other side once, before any record is read; otherwise
    both sides must be of one kind (DuckDB would convert a text column record by record)."""
    return a is not None and b is not None and ("literal" in (a, b) or a == b)


def _literal_kind(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Literal):
        return "literal" if node.is_string else "number"
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        return _CAST_KINDS.get(node.to.this, "number")
    return None


def _kind(node: exp.Expression, info: TableInfo) -> str | None:
    """What an expression that cannot fail on any record gives ("number", "text", "date",
    "bool", or "literal" for a string literal); None when it might fail. Conservative: only
    columns, literals, date parts of dates, case changes of text, and comparisons, IN and
    logic over those; everything else runs under TRY."""
    if isinstance(node, exp.Paren):
        return _kind(node.this, info)
    if isinstance(node, exp.Column):
        col = info.column(node.name)
        return col.type if col else None
    if isinstance(node, (*_DATE_PARTS, *_TEXT_FUNCTIONS)):
        wanted = "date" if isinstance(node, _DATE_PARTS) else "text"
        return ("number" if wanted == "date" else "text") if _kind(node.this, info) == wanted else None
    if isinstance(node, _COMPARISONS):
        return "bool" if _comparable(_kind(node.this, info), _kind(node.expression, info)) else None
    if isinstance(node, exp.In):
        this = _kind(node.this, info)
        return (
            "bool"
            if node.expressions and all(_comparable(this, _kind(e, info)) for e in node.expressions)
            else None
        )
    return _logic_kind(node, info) or _literal_kind(node)


def _logic_kind(node: exp.Expression, info: TableInfo) -> str | None:
    if isinstance(node, exp.And | exp.Or):
        return "bool" if _kind(node.this, info) == _kind(node.expression, info) == "bool" else None
    if isinstance(node, exp.Not):
        return "bool" if _kind(node.this, info) == "bool" else None
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return "bool" if _kind(node.this, info) is not None else None
    return None


def _scalar(node: exp.Expression, ctx: _Context) -> None:
    """A scalar expression (WHERE, GROUP BY, a group key output): allowlisted nodes only, and
    no identifier column anywhere in it."""
    if type(node) in _AGGREGATES or isinstance(node, exp.Filter):
        raise _misplaced_aggregate(node, ctx)
    if isinstance(node, exp.Cast):
        _literal_cast(node)
    allowed = isinstance(node, _SCALAR_NODES) or _unit(node)
    if isinstance(node, exp.DataType):
        allowed = node.this in _CAST_TYPES
    if not allowed:
        raise _refused_node(node)
    if isinstance(node, exp.Column):
        col = _column(node, ctx)
        if col.identifier:
            raise _identifier_refused(col, ctx.where)
        return
    for child in list(node.iter_expressions()):
        _scalar(child, ctx)


def _one_column(arg: exp.Expression | None, name: str) -> exp.Column:
    if not isinstance(arg, exp.Column):
        raise QueryRefused(
            _(
                "%(name)s(…) 的参数只能是一列，不能是表达式或条件；需要条件时请写在 WHERE 中，"
                "需要换算时请在导出后计算。",
                name=name,
            )
        )
    return arg


def _aggregate(node: exp.Expression, ctx: _Context) -> tuple[str, str | None]:
    """An allowed aggregate: its kind and the column it reads (identifiers may be counted)."""
    kind = _AGGREGATES[type(node)]
    arg = node.this
    if kind == "count" and isinstance(arg, exp.Star):
        return "count", None
    if kind == "count" and isinstance(arg, exp.Distinct):
        if len(arg.expressions) != 1:
            raise QueryRefused(_("COUNT(DISTINCT …) 只能计一列。"))
        return "count_distinct", _column(_one_column(arg.expressions[0], "COUNT"), ctx).name
    if kind == "count":
        raise QueryRefused(
            _(
                "不允许 COUNT(列)：它与 COUNT(*) 相减即得该列空值的个数，可绕过门槛。"
                "请用 COUNT(*)，并在 WHERE 中写「列 IS NOT NULL」。"
            )
        )
    col = _column(_one_column(arg, kind.upper()), ctx)
    if col.type != "number":
        raise QueryRefused(
            _("%(name)s 只能用于数值列；「%(column)s」不是数值列。", name=kind.upper(), column=col.name)
        )
    if col.reason == "personal":
        raise _identifier_refused(col, _("求和或平均"))
    return kind, col.name


def _sql(node: exp.Expression) -> str:
    return node.sql(dialect=DIALECT, identify=True, comments=False)


# ----------------------------------------------------------------------------- the statement


def _statement(sql: str) -> exp.Select:
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=DIALECT) if s is not None]
    except ParseError as exc:  # sqlglot's first error is the useful one
        detail = exc.errors[0]["description"] if exc.errors else str(exc)
        raise QueryRefused(_("SQL 无法解析：%(detail)s。只能写一条 SELECT 查询。", detail=detail)) from exc
    if len(statements) != 1:
        raise QueryRefused(_("只能写一条 SELECT 查询：这里有 %(n)s 条语句。", n=len(statements)))
    statement = statements[0]
    if isinstance(statement, exp.SetOperation):
        raise QueryRefused(_("不允许 UNION、INTERSECT、EXCEPT：每次只能写一条 SELECT 查询。"))
    if not isinstance(statement, exp.Select):
        word = _STATEMENT_WORDS.get(type(statement)) or statement.key.upper()
        if isinstance(statement, exp.Command):  # LOAD …, which sqlglot keeps as text
            word = str(statement.this).upper()
        raise QueryRefused(
            _("沙箱只运行 SELECT 查询，不允许 %(word)s：不能读写文件、加载扩展或更改设置。", word=word)
        )
    return statement


_PART_MESSAGES: dict[str, Message] = {
    "with_": _("不允许使用 WITH（公用表表达式）：只能直接查询表 data。"),
    "joins": _("不允许连接（JOIN）：只能查询一张表 data。"),
    "qualify": _("不允许 QUALIFY：它按窗口函数筛选单条记录。"),
    "distinct": _("不允许 SELECT DISTINCT：它输出单条记录的值。请用 GROUP BY 并计数。"),
    "sample": _("不允许抽样（SAMPLE）：请用 WHERE 筛选。"),
    "windows": _("不允许使用窗口函数（WINDOW）：它按记录输出结果。"),
    "having": _(
        "不允许 HAVING：对汇总值的条件可以逐步试探出被抑制或接近门槛的数值。对记录的条件请写在 WHERE 中，"
        "对汇总结果的筛选请在导出后自行进行。"
    ),
}


def _parts(select: exp.Select) -> None:
    for key, value in select.args.items():
        if value and key not in _SELECT_PARTS:
            raise QueryRefused(_PART_MESSAGES.get(key) or _("不允许的写法：%(part)s。", part=key.upper()))


def _table(select: exp.Select) -> str | None:
    """The one table read, `data`; its alias if any."""
    source = select.args.get("from_")
    table = source.this if source else None
    only_data = (
        isinstance(table, exp.Table)
        and isinstance(table.this, exp.Identifier)
        and table.name.lower() == "data"
        and not table.args.get("db")
        and not table.args.get("catalog")
    )
    if not only_data:
        raise QueryRefused(
            _("只能查询表 data：不能读取其他表、系统表、文件、网址或表函数（%(source)s）。",
              source=_sql(table)[:100] if table else "—")
        )  # fmt: skip
    assert isinstance(table, exp.Table)
    if set(k for k, v in table.args.items() if v) - {"this", "alias"}:
        raise QueryRefused(_("只能查询表 data 本身：不允许抽样或其他表选项。"))
    return table.alias or None


# ----------------------------------------------------------------------------- the parts


def _select_items(select: exp.Select) -> list[tuple[str, exp.Expression]]:
    items = []
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Star) or (
            isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)
        ):
            raise _refused_node(exp.Star())
        items.append(
            (item.alias_or_name if isinstance(item, exp.Alias) else item.sql(dialect=DIALECT), inner)
        )
    return items


def _group_keys(select: exp.Select, items: list[tuple[str, exp.Expression]], ctx: _Context) -> list[str]:
    group = select.args.get("group")
    if not group:
        return []
    if set(k for k, v in group.args.items() if v) - {"expressions"}:
        raise QueryRefused(_("不允许 GROUP BY ALL、ROLLUP、CUBE 或 GROUPING SETS：请逐一写出分组列。"))
    keys = []
    for key in group.expressions:
        key = _resolve_reference(key, items, ctx).copy()
        if isinstance(key, exp.Rollup | exp.Cube | exp.GroupingSets):
            raise QueryRefused(_("不允许 GROUP BY ALL、ROLLUP、CUBE 或 GROUPING SETS：请逐一写出分组列。"))
        keys.append(_sql(_checked(key, _Context(ctx.info, ctx.alias, _("分组（GROUP BY）")))))
    return keys


def _resolve_reference(
    node: exp.Expression, items: list[tuple[str, exp.Expression]], ctx: _Context
) -> exp.Expression:
    """GROUP BY 1 and GROUP BY an output's alias name that output's expression."""
    if isinstance(node, exp.Literal) and not node.is_string:
        index = int(node.this) - 1
        if not 0 <= index < len(items):
            raise QueryRefused(_("GROUP BY %(n)s 不是输出的列号。", n=node.this))
        return items[index][1]
    if isinstance(node, exp.Column) and not node.table and ctx.info.column(node.name) is None:
        for label, inner in items:
            if label == node.name:
                return inner
    return node


def _outputs(items: list[tuple[str, exp.Expression]], keys: list[str], ctx: _Context) -> list[Output]:
    outputs = []
    for label, inner in items:  # every item checked first: the message names what is not allowed
        node = inner.copy()
        if type(node) in _AGGREGATES:
            kind, column = _aggregate(node, ctx)
            outputs.append(Output(label, kind, _sql(node), column))
        else:
            node = _checked(node, _Context(ctx.info, ctx.alias, _("输出单条记录的值"), output=True))
            outputs.append(Output(label, "key", _sql(node)))
    for output in outputs:
        if output.kind == "key" and output.expr not in keys:
            raise QueryRefused(
                _(
                    "输出「%(label)s」既不是分组列，也不是 %(allowed)s 之一：沙箱不输出单条记录。"
                    "请把它加入 GROUP BY，或对它计数、求和。",
                    label=output.label,
                    allowed=ALLOWED_AGGREGATES,
                )
            )
    return outputs


def _order(select: exp.Select, outputs: list[Output], items: list[tuple[str, exp.Expression]], ctx: _Context) -> list[tuple[int, bool]]:  # fmt: skip
    order = select.args.get("order")
    result = []
    for ordered in order.expressions if order else []:
        target = ordered.this
        index = None
        if isinstance(target, exp.Literal) and not target.is_string:
            index = int(target.this) - 1
        elif isinstance(target, exp.Column) and not target.table:
            index = next((i for i, o in enumerate(outputs) if o.label == target.name), None)
        if index is None:
            index = _same_output(target, outputs, ctx)
        if index is None or not 0 <= index < len(outputs):
            raise QueryRefused(
                _("ORDER BY 只能按输出的列排序（列名、别名或列号）：%(sql)s。", sql=_sql(target)[:100])
            )
        result.append((index, bool(ordered.args.get("desc"))))
    return result


def _same_output(target: exp.Expression, outputs: list[Output], ctx: _Context) -> int | None:
    node = target.copy()
    try:
        if type(node) in _AGGREGATES:
            _aggregate(node, ctx)
        else:
            node = _checked(node, _Context(ctx.info, ctx.alias, _("排序（ORDER BY）")))
    except QueryRefused:
        return None
    return next((i for i, o in enumerate(outputs) if o.expr == _sql(node)), None)


def _count_literal(node: exp.Expression | None, what: str) -> int | None:
    if node is None:
        return None
    value = node.args.get("expression") or node.this
    if not (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()):
        raise QueryRefused(_("%(what)s 只能是一个非负整数。", what=what))
    return int(value.this)


def check_query(sql: str, info: TableInfo) -> Plan:
    """The query if every part of it is on the allowlist; QueryRefused naming the first part
    that is not."""
    select = _statement(sql)
    _parts(select)
    ctx = _Context(info, _table(select), _("输出"))
    items = _select_items(select)
    keys = _group_keys(select, items, ctx)
    outputs = _outputs(items, keys, ctx)
    if not keys and all(o.kind == "key" for o in outputs):
        raise QueryRefused(
            _("沙箱不输出单条记录：请用 GROUP BY 分组并使用 %(allowed)s。", allowed=ALLOWED_AGGREGATES)
        )
    where = select.args.get("where")
    if where is not None:
        where = _checked(where.this.copy(), _Context(info, ctx.alias, _("筛选（WHERE）")), condition=True)
    return Plan(
        sql=sql,
        where=_sql(where) if where is not None else None,
        group_by=keys,
        outputs=outputs,
        order_by=_order(select, outputs, items, ctx),
        limit=_count_literal(select.args.get("limit"), "LIMIT"),
        offset=_count_literal(select.args.get("offset"), "OFFSET") or 0,
    )


# ----------------------------------------------------------------------------- running


@dataclass
class Prior:
    """A query released earlier: its plan and its released cells (group key JSON → records)."""

    plan: Plan
    cells: dict[str, int]


@dataclass
class Outcome:
    columns: list[str]
    # Raw values, for the department and the bureau: the shown rows (in safe_rows' order),
    # then the `dropped` rows of groups below k, which the holder never sees.
    rows: list[list]
    safe_rows: list[list]  # what the holder sees: perturbed values, None where withheld
    # (row, column, reason) of safe_rows: "small" | "dominance" | "differencing" | "secondary"
    # (withheld so that a single withheld cell of a column cannot be had by subtraction)
    suppressed: list[tuple[int, int, str]]
    cells: dict[str, int]  # released groups: key JSON → records (a later query's Prior)
    dropped: int = 0  # groups below k left out (department and bureau only: never to the holder)


def _jsonable(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def key_json(values: Sequence[object]) -> str:
    return json.dumps([_jsonable(v) for v in values], ensure_ascii=False)


@dataclass
class _Row:
    values: list  # outputs, JSON-able, raw
    key: str  # group key JSON
    n: int  # records behind it
    reasons: list[str | None]  # per output: why withheld, or None
    perturbed: list  # outputs as the holder may see them (cell-key perturbation)
    released: bool = True  # its records count as a released cell (not small, not differenced)


def _hidden(o: Output) -> list[str]:
    """Per SUM/AVG what the rules read: the two largest absolute contributions, the sum of
    absolute values, the non-zero contributors; for AVG also its sum and its count. In DOUBLE:
    abs() of the smallest BIGINT would overflow."""
    if o.kind not in ("sum", "avg"):
        return []
    c = '"' + (o.column or "").replace('"', '""') + '"'
    parts = [f"max(abs({c}::DOUBLE), 2)", f"sum(abs({c}::DOUBLE))", f"count_if({c} <> 0)"]
    return parts + ([f"sum({c})", f"count({c})"] if o.kind == "avg" else [])


def _executed_sql(plan: Plan, max_rows: int, merged: Sequence[Prior] = ()) -> str:
    """The SQL that runs: outputs, then the group keys, the records per group, the cell key,
    per SUM/AVG what the dominance, contributor and perturbation rules read, and per merged
    prior (same grouping) how many of the group's records its WHERE also selects."""
    parts = [f'{o.expr} AS "__sdc_o{i}"' for i, o in enumerate(plan.outputs)]
    parts += [f'{g} AS "__sdc_g{j}"' for j, g in enumerate(plan.group_by)]
    parts += ['count(*) AS "__sdc_n"', f'sum("{RECORD_KEY}") AS "__sdc_key"']  # mod KEY_SPACE in Python
    parts += [h for o in plan.outputs for h in _hidden(o)]
    parts += [f"count(*) FILTER (WHERE {prior.plan.where or 'true'})" for prior in merged]
    sql = f"SELECT {', '.join(parts)} FROM data"
    sql += f" WHERE {plan.where}" if plan.where else ""
    sql += f" GROUP BY {', '.join(plan.group_by)}" if plan.group_by else ""
    return sql + f" LIMIT {max_rows + 1}"


def _dominated(top: list | None, total: object) -> bool:
    if not top or not total:
        return False
    return float(sum(t for t in top if t is not None)) > DOMINANCE_SHARE * float(total)  # type: ignore[arg-type]


def _stats(plan: Plan, values: tuple) -> list[tuple]:
    """Per output, its hidden columns (empty for keys and counts)."""
    at = len(plan.outputs) + len(plan.group_by) + 2
    out = []
    for o in plan.outputs:
        width = len(_hidden(o))
        out.append(tuple(values[at : at + width]))
        at += width
    return out


def _cell_reason(o: Output, value: object, stats: tuple, k: int) -> str | None:
    if o.kind == "count_distinct" and (value or 0) < k:  # type: ignore[operator]
        return "small"  # fewer than k distinct values: each could be one record's
    if o.kind in ("sum", "avg"):
        top, total, contributors = stats[:3]
        return "small" if (contributors or 0) < k else "dominance" if _dominated(top, total) else None
    return None


# ----------------------------------------------------------------------------- perturbation

_NOISE_VALUES = [d for d, _p in PERTURBATION]
_NOISE_BOUNDS = list(itertools.accumulate(p for _d, p in PERTURBATION))


def noise(cell_key: int, what: str) -> int:
    """The perturbation table's value for this cell key and this statistic: the same records
    always draw the same value; the key is uniform and secret, so different cells' values are
    independent, and so are a cell's COUNT and each of its SUMs (hashed with their names)."""
    digest = hashlib.blake2b(f"{cell_key}:{what}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    return _NOISE_VALUES[min(bisect.bisect_right(_NOISE_BOUNDS, u), len(_NOISE_VALUES) - 1)]


def _like(value: float, raw: object) -> float | int:
    return int(round(value)) if isinstance(raw, int) else round(value, 6)


def _perturbed_sum(o: Output, raw: object, stats: tuple, cell_key: int) -> float | int | None:
    """SUM + d × SUM_SCALE × the cell's largest absolute contribution."""
    if raw is None:
        return None
    top = stats[0] or [0.0]
    return _like(float(raw) + noise(cell_key, f"sum:{o.column}") * SUM_SCALE * float(top[0] or 0), raw)  # type: ignore[arg-type]


def _perturbed(o: Output, raw: object, stats: tuple, cell_key: int) -> object:
    if o.kind == "count":
        return max(1, int(raw) + noise(cell_key, "count"))  # type: ignore[call-overload]
    if o.kind == "count_distinct":
        return max(1, int(raw) + noise(cell_key, f"distinct:{o.column}"))  # type: ignore[call-overload]
    if o.kind == "sum":
        return _perturbed_sum(o, raw, stats, cell_key)
    if o.kind == "avg":  # the perturbed SUM over the perturbed count, as SUM and COUNT(*) show them
        total, count = _jsonable(stats[3]), stats[4]
        if total is None or not count:
            return None
        return round(float(_perturbed_sum(o, total, stats, cell_key) or 0) / max(1, count + noise(cell_key, "count")), 6)  # fmt: skip
    return raw


def _row(plan: Plan, values: tuple, k: int) -> _Row:
    width, keys = len(plan.outputs), len(plan.group_by)
    n, cell_key = int(values[width + keys]), int(values[width + keys + 1] or 0) % KEY_SPACE
    raw = [_jsonable(v) for v in values[:width]]
    stats = _stats(plan, values)
    small = n < k
    return _Row(
        raw,
        key_json(values[width : width + keys]),
        n,
        [
            ("small" if small else _cell_reason(o, v, st, k))
            for o, v, st in zip(plan.outputs, raw, stats, strict=True)
        ],  # fmt: skip
        [_perturbed(o, v, st, cell_key) for o, v, st in zip(plan.outputs, raw, stats, strict=True)],
        released=not small,
    )


def _rows(plan: Plan, fetched: list[tuple], k: int) -> list[_Row]:
    return [_row(plan, values, k) for values in fetched]


# ----------------------------------------------------------------------------- differencing


def _same_records(a: Plan, b: Plan) -> bool:
    return a.where == b.where and a.group_by == b.group_by


def _near(counts: list[int], sorted_prior: list[int], k: int) -> bool:
    """Some pair of counts differs by less than k (only such pairs can differ by 1 … k−1 records)."""
    for n in counts:
        i = bisect.bisect_left(sorted_prior, n - k + 1)
        if i < len(sorted_prior) and sorted_prior[i] < n + k:
            return True
    return False


def _overlap_sql(plan: Plan, prior: Plan) -> str:
    keys = plan.group_by + prior.group_by
    where = " AND ".join(f"({w})" for w in (plan.where, prior.where) if w) or "true"
    sql = f"SELECT {', '.join([*keys, 'count(*)'])} FROM data WHERE {where}"
    if keys:
        sql += " GROUP BY " + ", ".join(str(i + 1) for i in range(len(keys)))
    return sql


def _differenced(con: duckdb.DuckDBPyConnection, plan: Plan, current: dict[str, int], prior: Prior, k: int) -> set[str]:  # fmt: skip
    """Groups of this query whose records differ from a released cell of the prior by 1 … k−1."""
    if _same_records(plan, prior.plan) or not _near(list(current.values()), sorted(prior.cells.values()), k):
        return set()
    mine = len(plan.group_by)
    found = set()
    for values in con.execute(_overlap_sql(plan, prior.plan)).fetchall():
        key, prior_key, both = key_json(values[:mine]), key_json(values[mine:-1]), int(values[-1])
        if key in current and prior_key in prior.cells:
            difference = current[key] + prior.cells[prior_key] - 2 * both
            if 0 < difference < k:
                found.add(key)
    return found


def _merged(plan: Plan, priors: Sequence[Prior]) -> list[Prior]:
    """Priors over the same groups (the usual differencing attack: one more condition in WHERE)
    are answered by the main query itself, a filtered count each, instead of a scan of their
    own: a group's records and the prior's cell of the same key overlap by that count, and
    groups of different keys do not overlap at all."""
    same = [p for p in priors if p.plan.group_by == plan.group_by and not _same_records(plan, p.plan)]
    return same[-MERGED_PRIORS:]


def _differenced_merged(rows: list[_Row], fetched: list[tuple], merged: list[Prior], k: int) -> set[str]:
    found = set()
    for row, values in zip(rows, fetched, strict=True):
        overlaps = values[len(values) - len(merged) :]
        for prior, both in zip(merged, overlaps, strict=True):
            theirs = prior.cells.get(row.key)
            if row.released and theirs is not None and 0 < row.n + theirs - 2 * int(both) < k:
                found.add(row.key)
    return found


def _apply_differencing(con: duckdb.DuckDBPyConnection, plan: Plan, rows: list[_Row], flagged: set[str], priors: Sequence[Prior], k: int) -> None:  # fmt: skip
    current = {r.key: r.n for r in rows if r.released}
    for prior in priors:
        flagged |= _differenced(con, plan, current, prior, k)
    for row in rows:
        if row.key in flagged:
            row.reasons = [
                reason or ("differencing" if o.kind != "key" else None) for o, reason in zip(plan.outputs, row.reasons, strict=True)
            ]  # fmt: skip
            row.released = False


def _smallest(rows: list[_Row], index: int) -> _Row | None:
    candidates = [r for r in rows if r.reasons[index] is None and isinstance(r.values[index], int | float)]
    # Ties go by key, so that running the query again withholds the same cell, not another one.
    return min(candidates, key=lambda r: (abs(r.values[index]), r.key), default=None)


def _apply_secondary(plan: Plan, rows: list[_Row]) -> None:
    """A column with a single withheld cell would give it away by subtraction from the total
    (a query without the grouping): the smallest released cell of that column is withheld too,
    so the total only gives the sum of two."""
    for index, output in enumerate(plan.outputs):
        if output.kind == "key" or sum(r.reasons[index] is not None for r in rows) != 1:
            continue
        victim = _smallest(rows, index)
        if victim is not None:
            victim.reasons[index] = "secondary"


# ----------------------------------------------------------------------------- the output


def _safe(row: _Row) -> list:
    return [None if reason else value for value, reason in zip(row.perturbed, row.reasons, strict=True)]


def _compare(order: list[tuple[int, bool]], a: list, b: list) -> int:
    """Safe values compared, withheld (None) last in either direction."""
    for index, desc in order:
        x, y = a[index], b[index]
        if x == y:
            continue
        if x is None or y is None:
            return 1 if x is None else -1
        return (-1 if x < y else 1) * (-1 if desc else 1)
    return 0


def _ordered(plan: Plan, rows: list[_Row]) -> list[_Row]:
    """The shown rows sorted by what the holder sees; then OFFSET and LIMIT. Without ORDER BY:
    by the keys, or by every output when no key is shown; withheld last."""
    keys = [(i, False) for i, o in enumerate(plan.outputs) if o.kind == "key"]
    order = (plan.order_by or keys or [(i, False) for i in range(len(plan.outputs))]) + keys  # keys: ties
    safe = {id(row): _safe(row) for row in rows}

    def compare(a: _Row, b: _Row) -> int:
        return _compare(order, safe[id(a)], safe[id(b)])

    rows = sorted(rows, key=functools.cmp_to_key(compare))
    end = None if plan.limit is None else plan.offset + plan.limit
    return rows[plan.offset : end]


def _outcome(plan: Plan, rows: list[_Row], dropped: list[_Row]) -> Outcome:
    suppressed = [
        (r, c, reason)
        for r, row in enumerate(rows)
        for c, reason in enumerate(row.reasons)
        if reason is not None
    ]
    return Outcome(
        columns=plan.columns,
        rows=[row.values for row in rows + dropped],
        safe_rows=[_safe(row) for row in rows],
        suppressed=suppressed,
        cells={row.key: row.n for row in rows if row.released},
        dropped=len(dropped),
    )


def run_query(
    info: TableInfo,
    plan: Plan,
    *,
    k: int = 10,
    priors: Sequence[Prior] = (),
    timeout_s: float = 30.0,
    memory_limit: str = MEMORY_LIMIT,
    max_rows: int = 10_000,
) -> Outcome:
    """Run a checked plan on the locked connection, leave out groups below k, withhold what is
    not safe to release and perturb the rest. QueryRefused when it takes longer than timeout_s,
    more memory than memory_limit, has more than max_rows groups, or fails in DuckDB (one
    message; DuckDB's text in QueryRefused.detail only)."""
    if not info.record_keys:
        raise QueryRefused(_("该数据表的沙箱副本是旧格式（没有记录密钥），需要重新生成后才能查询。"))
    with locked(Path(info.path), timeout_s=timeout_s, memory_limit=memory_limit) as con:
        merged = _merged(plan, priors)
        fetched = con.execute(_executed_sql(plan, max_rows, merged)).fetchall()
        if len(fetched) > max_rows:
            raise QueryRefused(
                _(
                    "查询结果超过 %(n)s 组，沙箱不输出。请用更粗的分组（如按月而不是按日、按街道而不是按地址）"
                    "或加筛选条件。",
                    n=max_rows,
                )
            )
        rows = _rows(plan, fetched, k)
        flagged = _differenced_merged(rows, fetched, merged, k)
        rest = [p for p in priors if all(p is not m for m in merged)]
        _apply_differencing(con, plan, rows, flagged, rest, k)
    shown = [r for r in rows if r.n >= k]
    _apply_secondary(plan, shown)
    return _outcome(plan, _ordered(plan, shown), [r for r in rows if r.n < k])
