"""search synonyms

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

The bureau's synonym list for search: the everyday words people type, and the official words
of the catalog they stand for. Seeded with common public-service aliases; from then on the
bureau's (/admin/synonyms).
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# The seed, as it was on the day of this migration (the list is the bureau's afterwards).
SEED = {
    # health and medical insurance
    "打疫苗": ["预防接种"], "疫苗接种": ["预防接种"], "接种疫苗": ["预防接种"], "打预防针": ["预防接种"],
    "医院": ["医疗机构"], "诊所": ["医疗机构"], "看病": ["医疗机构"], "卫生所": ["医疗机构"],
    "卫生院": ["医疗机构"], "卫生室": ["医疗机构"], "卫生服务中心": ["医疗机构"], "社区医院": ["医疗机构"],
    "买药": ["药店", "药品零售"],
    "医生": ["医师"], "大夫": ["医师"],
    "药店": ["药品零售", "医药机构"], "药房": ["药店", "药品零售", "医药机构"],
    "医保药店": ["医保定点医药机构"], "定点药店": ["定点医药机构"], "医疗保险": ["医保"],
    "社保": ["社会保险"], "养老保险": ["社会保险"], "出生证": ["出生医学证明"],
    # civil affairs
    "结婚登记": ["婚姻登记"], "结婚": ["婚姻登记"], "离婚": ["婚姻登记"], "领证": ["婚姻登记"],
    "养老院": ["养老机构"], "敬老院": ["养老机构"], "老年公寓": ["养老机构"], "托老所": ["养老机构"],
    "老人院": ["养老机构"], "福利院": ["养老机构"],
    "协会": ["社会组织"], "社团": ["社会组织"], "民办非企业": ["社会组织"], "民非": ["社会组织"],
    "基金会": ["社会组织"], "低保": ["最低生活保障"],
    "老兵": ["退役军人"], "退伍军人": ["退役军人"], "转业军人": ["退役军人"], "残联": ["残疾人"],
    # household registration, safety, emergencies
    "户口": ["户籍"], "落户": ["户籍"], "迁户": ["户籍"], "身份证": ["户籍"],
    "车祸": ["交通事故"], "避难所": ["应急避难场所"], "避难场所": ["应急避难场所"], "避难点": ["应急避难场所"],
    "危险品": ["危险化学品"], "危化品": ["危险化学品"],
    # transport and the city
    "公交车": ["公交"], "公共汽车": ["公交"], "巴士": ["公交"], "公交站": ["公交站点"],
    "几路车": ["公交线路"], "坐车": ["公交"], "乘车": ["公交"], "货运": ["道路运输"], "客运": ["道路运输"],
    "打车": ["网约车"], "停车位": ["停车场"], "车位": ["停车场"], "加油": ["加油站", "成品油"],
    "厕所": ["公共厕所", "公厕"], "卫生间": ["公共厕所", "公厕"], "洗手间": ["公共厕所", "公厕"],
    "自来水": ["供水"], "饮水": ["供水"], "河水": ["水位"], "水情": ["水位"],
    # culture, tourism, sport
    "景点": ["旅游景区"], "旅游景点": ["旅游景区"], "风景区": ["旅游景区"], "游玩": ["旅游景区"],
    "宾馆": ["饭店", "酒店"], "旅馆": ["饭店", "酒店"],
    "体育馆": ["体育场馆"], "运动场": ["体育场馆"], "游泳馆": ["体育场馆"], "球场": ["体育场馆"],
    "健身": ["体育场馆", "全民健身"],
    # schools
    "小学": ["中小学校"], "中学": ["中小学校"], "初中": ["中小学校"], "上学": ["中小学校"], "托儿所": ["幼儿园"],
    # housing and land
    "新房": ["商品房"], "楼盘": ["商品房"], "期房": ["商品房预售"], "买房": ["商品房", "房屋网签"],
    "二手房": ["房屋网签", "不动产登记"], "房产证": ["不动产登记"], "房本": ["不动产登记"], "过户": ["不动产登记"],
    "物业公司": ["物业服务企业"], "卖地": ["国有建设用地供应"], "土地出让": ["国有建设用地供应"],
    "土地拍卖": ["国有建设用地供应"],
    # business, work, taxes
    "营业执照": ["企业设立登记"], "开公司": ["企业设立登记"], "注册公司": ["企业设立登记"],
    "办事指南": ["政务服务事项"], "找工作": ["招聘"], "求职": ["招聘"], "招工": ["招聘"], "工作岗位": ["招聘岗位"],
    "培训班": ["职业技能培训"], "交税": ["纳税", "办税"], "报税": ["办税"], "罚款": ["行政处罚"],
    "失信": ["信用"], "黑名单": ["行政处罚", "信用"], "招标": ["政府采购"], "高企": ["高新技术企业"], "规上": ["规模以上"],
    "科技企业": ["高新技术企业"], "贷款": ["小额贷款", "金融"], "小贷": ["小额贷款"], "担保公司": ["融资担保"],
    "餐馆": ["食品经营"], "饭馆": ["食品经营"], "餐厅": ["食品经营"], "锅炉": ["特种设备"],
    "化肥": ["农资"], "农药": ["农资"], "种子": ["农资"], "蔬菜": ["农产品"],
    # environment, weather, economy
    "天气": ["气象"], "下雨": ["气象", "降水"], "降雨": ["气象", "降水"], "气温": ["气象"], "雾霾": ["空气质量"],
    "pm2.5": ["空气质量"], "gdp": ["地区生产总值", "经济指标"],
}


def upgrade() -> None:
    table = op.create_table('search_synonyms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=50), nullable=False),
    sa.Column('expansions', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_search_synonyms_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_synonyms')),
    sa.UniqueConstraint('term', name=op.f('uq_search_synonyms_term'))
    )
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    op.bulk_insert(table, [{"term": term, "expansions": expansions, "created_at": now, "created_by_id": None}
                           for term, expansions in SEED.items()])


def downgrade() -> None:
    op.drop_table('search_synonyms')
