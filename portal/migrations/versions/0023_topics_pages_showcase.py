"""topics pages showcase

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

Topics (专题), editable pages and notices, showcase review (issue 20, items 5 and 6).

The showcase's `datasets` (a JSON list of names as typed) becomes a link table to the datasets
it names; a name that matches no dataset is dropped. Entries already shown were shown before
review existed: they become approved, hidden ones rejected.
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topics")),
        sa.UniqueConstraint("slug", name=op.f("uq_topics_slug")),
    )
    op.create_table(
        "topic_datasets",
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_topic_datasets_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(["topic_id"], ["topics.id"], name=op.f("fk_topic_datasets_topic_id_topics")),
        sa.PrimaryKeyConstraint("topic_id", "dataset_id", name=op.f("pk_topic_datasets")),
    )
    op.create_index(op.f("ix_topic_datasets_dataset_id"), "topic_datasets", ["dataset_id"], unique=False)
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], name=op.f("fk_pages_updated_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
    )
    op.create_index(op.f("ix_pages_kind"), "pages", ["kind"], unique=False)
    op.create_table(
        "page_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=True),
        sa.Column("edited_by_id", sa.Integer(), nullable=True),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["edited_by_id"], ["users.id"], name=op.f("fk_page_versions_edited_by_id_users")
        ),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"], name=op.f("fk_page_versions_page_id_pages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_versions")),
    )
    op.create_index(op.f("ix_page_versions_page_id"), "page_versions", ["page_id"], unique=False)

    op.create_table(
        "showcase_datasets",
        sa.Column("showcase_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_showcase_datasets_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["showcase_id"], ["showcase.id"], name=op.f("fk_showcase_datasets_showcase_id_showcase")
        ),
        sa.PrimaryKeyConstraint("showcase_id", "dataset_id", name=op.f("pk_showcase_datasets")),
    )
    op.create_index(
        op.f("ix_showcase_datasets_dataset_id"), "showcase_datasets", ["dataset_id"], unique=False
    )
    op.add_column("showcase", sa.Column("author", sa.String(length=100), nullable=True))
    op.add_column("showcase", sa.Column("image_path", sa.String(length=300), nullable=True))
    op.add_column(
        "showcase", sa.Column("status", sa.String(length=20), nullable=False, server_default="pending")
    )
    op.add_column("showcase", sa.Column("reviewed_by_id", sa.Integer(), nullable=True))
    op.add_column("showcase", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("showcase", sa.Column("review_reason", sa.Text(), nullable=True))
    op.create_index(op.f("ix_showcase_status"), "showcase", ["status"], unique=False)
    _move_dataset_names()
    op.drop_column("showcase", "datasets")
    _seed_pages()


# The single pages start with a short text of their own, so the footer's links lead somewhere;
# the bureau rewrites them at /admin/pages (each save is a version).
PAGES = [
    (
        "guide",
        "使用指南",
        "User guide",
        "## 查找数据\n\n在首页或[数据目录](/search)中搜索，按领域、部门和开放类型筛选。\n\n"
        "## 下载和调用\n\n无条件开放数据免登录下载，也可通过[开发者接口](/api/docs)调用。\n\n"
        "## 申请有条件开放数据\n\n登录后在数据集页面提交申请，由提供部门审核。",
        "## Finding data\n\nSearch from the home page or the [catalog](/search) and filter by domain, "
        "department and open class.\n\n## Downloads and API\n\nUnconditionally open data is downloaded without "
        "an account, or read through the [developer API](/api/docs).\n\n## Conditional data\n\nSign in and "
        "apply on the dataset's page; the providing department decides.",
    ),
    (
        "faq",
        "常见问题",
        "Frequently asked questions",
        "**下载数据需要注册吗？**\n\n无条件开放数据不需要注册。\n\n"
        "**发现数据有错误怎么办？**\n\n在数据集页面提交纠错，提供部门核实后公开答复。",
        "**Do I need an account to download?**\n\nNot for unconditionally open data.\n\n"
        "**I found an error in the data.**\n\nReport it on the dataset's page; the providing department checks "
        "and answers publicly.",
    ),
    (
        "terms",
        "服务条款",
        "Terms of service",
        "使用本平台数据应遵守《东昌府区政务数据资源管理暂行办法》和数据的开放许可，"
        "注明所利用政务数据的来源和获取日期。",
        "Use of the data follows the Dongchangfu District measures on government data resources and the "
        "data's open licence; state the source of the government data and the date it was obtained.",
    ),
    (
        "privacy",
        "隐私政策",
        "Privacy policy",
        "本平台只收集提供服务所必需的账户信息（姓名、邮箱），不向第三方提供。",
        "The portal keeps only the account details its services need (name, email address) and gives them "
        "to no third party.",
    ),
]


def _seed_pages() -> None:
    pages = sa.table(
        "pages",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("title", sa.String),
        sa.column("title_en", sa.String),
        sa.column("body", sa.Text),
        sa.column("body_en", sa.Text),
        sa.column("published", sa.Boolean),
        sa.column("published_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    versions = sa.table(
        "page_versions",
        sa.column("page_id", sa.Integer),
        sa.column("title", sa.String),
        sa.column("title_en", sa.String),
        sa.column("body", sa.Text),
        sa.column("body_en", sa.Text),
        sa.column("edited_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    conn = op.get_bind()
    for kind, title, title_en, body, body_en in PAGES:
        conn.execute(
            pages.insert().values(
                kind=kind,
                title=title,
                title_en=title_en,
                body=body,
                body_en=body_en,
                published=True,
                published_at=now,
                updated_at=now,
            )
        )
        page_id = conn.scalar(sa.select(sa.func.max(pages.c.id)).where(pages.c.kind == kind))
        conn.execute(
            versions.insert().values(
                page_id=page_id, title=title, title_en=title_en, body=body, body_en=body_en, edited_at=now
            )
        )


def _move_dataset_names() -> None:
    conn = op.get_bind()
    showcase = sa.table(
        "showcase",
        sa.column("id", sa.Integer),
        sa.column("datasets", sa.JSON),
        sa.column("hidden", sa.Boolean),
    )
    datasets = sa.table("datasets", sa.column("id", sa.Integer), sa.column("name", sa.String))
    links = sa.table(
        "showcase_datasets", sa.column("showcase_id", sa.Integer), sa.column("dataset_id", sa.Integer)
    )
    for item_id, names, hidden in conn.execute(
        sa.select(showcase.c.id, showcase.c.datasets, showcase.c.hidden)
    ):
        if isinstance(names, str):
            names = json.loads(names)
        wanted = [n.strip() for n in names or [] if isinstance(n, str) and n.strip()]
        ids = (
            list(dict.fromkeys(conn.scalars(sa.select(datasets.c.id).where(datasets.c.name.in_(wanted)))))
            if wanted
            else []
        )
        for dataset_id in ids:
            conn.execute(links.insert().values(showcase_id=item_id, dataset_id=dataset_id))
        conn.execute(
            sa.text("UPDATE showcase SET status = :status WHERE id = :id"),
            {"status": "rejected" if hidden else "approved", "id": item_id},
        )


def downgrade() -> None:
    op.add_column("showcase", sa.Column("datasets", sa.JSON(), nullable=False, server_default="[]"))
    op.drop_index(op.f("ix_showcase_status"), table_name="showcase")
    for column in ("review_reason", "reviewed_at", "reviewed_by_id", "status", "image_path", "author"):
        op.drop_column("showcase", column)
    op.drop_index(op.f("ix_showcase_datasets_dataset_id"), table_name="showcase_datasets")
    op.drop_table("showcase_datasets")
    op.drop_index(op.f("ix_page_versions_page_id"), table_name="page_versions")
    op.drop_table("page_versions")
    op.drop_index(op.f("ix_pages_kind"), table_name="pages")
    op.drop_table("pages")
    op.drop_index(op.f("ix_topic_datasets_dataset_id"), table_name="topic_datasets")
    op.drop_table("topic_datasets")
    op.drop_table("topics")
