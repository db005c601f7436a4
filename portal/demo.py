"""A realistic internal catalog of Dongchangfu District for the demo and the tests.

One catalog spreadsheet per department (XLSX, or CSV in UTF-8, UTF-8 with BOM, GBK), data
files with realistic columns and values (the district's streets and towns, coordinates around
36.45N 115.98E), all three open classes with their legal bases — and a few entries with each
problem the harvester must catch: no legal basis, unknown or missing open class, personal
information, a corrupt workbook, a missing file, a dead link, a broken catalog row.

Deterministic: the same seed gives the same entries and values.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stdnum.cn import ric, uscc

from portal import clock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

# (code, name, abbreviation for resource codes)
DEPARTMENTS = [
    ("dcf-jtj", "东昌府区教育和体育局", "JTJ"),
    ("dcf-wjj", "东昌府区卫生健康局", "WJJ"),
    ("dcf-scjgj", "东昌府区市场监督管理局", "SCJ"),
    ("dcf-jtysj", "东昌府区交通运输局", "JTY"),
    ("dcf-zrzyj", "聊城市自然资源和规划局东昌府分局", "ZRZ"),
    ("dcf-mzj", "东昌府区民政局", "MZJ"),
    ("dcf-wlj", "东昌府区文化和旅游局", "WLJ"),
    ("dcf-rsj", "东昌府区人力资源和社会保障局", "RSJ"),
    ("dcf-zjj", "东昌府区住房和城乡建设局", "ZJJ"),
    ("dcf-nyncj", "东昌府区农业农村局", "NYJ"),
    ("dcf-slj", "东昌府区水利局", "SLJ"),
    ("dcf-yjj", "东昌府区应急管理局", "YJJ"),
    ("dcf-czj", "东昌府区财政局", "CZJ"),
    ("dcf-tjj", "东昌府区统计局", "TJJ"),
    ("dcf-sthjj", "聊城市生态环境局东昌府分局", "STH"),
    ("dcf-gaj", "聊城市公安局东昌府分局", "GAJ"),
    ("dcf-sfj", "东昌府区司法局", "SFJ"),
    ("dcf-tyjrj", "东昌府区退役军人事务局", "TYJ"),
    ("dcf-ybj", "东昌府区医疗保障局", "YBJ"),
    ("dcf-xzspj", "东昌府区行政审批服务局", "XSJ"),
    ("dcf-zhzfj", "东昌府区综合行政执法局", "ZFJ"),
    ("dcf-swj", "东昌府区商务和投资促进局", "SWJ"),
    ("dcf-fgj", "东昌府区发展和改革局", "FGJ"),
    ("dcf-gxj", "东昌府区工业和信息化局", "GXJ"),
    ("dcf-kjj", "东昌府区科学技术局", "KJJ"),
    ("dcf-sjj", "东昌府区审计局", "SJJ"),
    ("dcf-swju", "国家税务总局聊城市东昌府区税务局", "SWU"),
    ("dcf-cl", "东昌府区残疾人联合会", "CLH"),
    ("dcf-daj", "东昌府区档案馆", "DAG"),
    ("dcf-gxs", "东昌府区供销合作社", "GXS"),
    ("dcf-fl", "东昌府区妇女联合会", "FLH"),
    ("dcf-jrj", "东昌府区地方金融服务中心", "JRJ"),
    ("dcf-qxj", "东昌府区气象局", "QXJ"),
]

STREETS = [
    "古楼街道",
    "柳园街道",
    "新区街道",
    "湖西街道",
    "道口铺街道",
    "阎寺街道",
    "凤凰街道",
    "北城街道",
    "侯营镇",
    "沙镇镇",
    "堂邑镇",
    "梁水镇镇",
    "斗虎屯镇",
    "郑家镇",
    "张炉集镇",
    "于集镇",
    "许营镇",
    "朱老庄镇",
    "顾官屯镇",
    "李海务街道",
    "蒋官屯街道",
]
ROADS = [
    "东昌路",
    "柳园路",
    "兴华路",
    "花园路",
    "光岳路",
    "建设路",
    "湖南路",
    "昌润路",
    "振兴路",
    "卫育路",
    "站前街",
    "利民路",
    "鲁化路",
    "铁塔商业街",
    "古楼东大街",
    "水城大道",
]
BRANDS = [
    "鲁西",
    "水城",
    "凤凰",
    "光岳",
    "东昌",
    "运河",
    "古楼",
    "江北",
    "金柱",
    "华信",
    "鑫源",
    "恒通",
    "安泰",
    "润德",
    "泰和",
    "聚丰",
    "瑞康",
    "众诚",
    "福源",
    "宏达",
]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"

UNCONDITIONAL_BASIS = "《东昌府区政务数据资源管理暂行办法》第二十二条、第二十四条"
CONDITIONAL_BASES = [
    "《中华人民共和国个人信息保护法》第十三条；《东昌府区政务数据资源管理暂行办法》第二十二条第二项",
    "《中华人民共和国数据安全法》第三十八条；《山东省公共数据开放办法》第十二条",
    "《政务信息资源共享管理暂行办法》（国发〔2016〕51号）第九条",
    "《山东省公共数据开放办法》第十二条、第十五条",
]
NOT_OPEN_BASES = [
    "《中华人民共和国保守国家秘密法》第九条",
    "《中华人民共和国个人信息保护法》第二十八条（敏感个人信息）",
    "《中华人民共和国统计法》第三十九条",
    "《东昌府区政务数据资源管理暂行办法》第二十二条第三项",
]
CONDITIONS = [
    "仅限申请用途使用，不得向第三方提供",
    "需签订数据使用协议，按月提交使用情况报告",
    "脱敏后按字段提供，仅限城市治理和社会服务用途",
    "科研教育用途可申请，禁止商业使用",
]
CYCLES = ["每日", "每周", "每月", "每季度", "每半年", "每年", "实时", "不定期"]

# Dataset templates: (department code, domain, title, columns, tags). A column is
# "名称:kind[:arg]"; kinds are the methods of _Row.
TEMPLATES: list[tuple[str, str, str, list[str], str]] = [
    (
        "dcf-jtj",
        "教育文化",
        "中小学校名录",
        [
            "学校名称:school",
            "学段:choice:小学|初中|九年一贯制",
            "所属街道:street",
            "地址:address",
            "联系电话:landline",
            "在校学生数:int:200:3200",
            "经度:lon",
            "纬度:lat",
        ],
        "学校 教育",
    ),
    (
        "dcf-jtj",
        "教育文化",
        "幼儿园名录",
        [
            "幼儿园名称:kindergarten",
            "办园性质:choice:公办|民办|普惠性民办",
            "所属街道:street",
            "地址:address",
            "班级数:int:3:18",
            "联系电话:landline",
        ],
        "幼儿园 学前教育",
    ),
    (
        "dcf-jtj",
        "教育文化",
        "公共体育场馆信息",
        [
            "场馆名称:venue",
            "场馆类型:choice:体育馆|游泳馆|全民健身中心|足球场",
            "地址:address",
            "开放时间:choice:08:00-21:00|06:00-22:00|09:00-17:00",
            "经度:lon",
            "纬度:lat",
        ],
        "体育 场馆",
    ),
    (
        "dcf-wjj",
        "医疗卫生",
        "医疗机构名录",
        [
            "机构名称:hospital",
            "机构类别:choice:综合医院|社区卫生服务中心|乡镇卫生院|村卫生室|诊所",
            "所属街道:street",
            "地址:address",
            "床位数:int:0:800",
            "联系电话:landline",
            "经度:lon",
            "纬度:lat",
        ],
        "医院 医疗机构",
    ),
    (
        "dcf-wjj",
        "医疗卫生",
        "预防接种门诊信息",
        [
            "门诊名称:clinic",
            "所属街道:street",
            "地址:address",
            "服务时间:choice:周一至周五 08:00-11:30|周二、周四 14:00-17:00",
            "联系电话:landline",
        ],
        "疫苗 接种",
    ),
    (
        "dcf-wjj",
        "医疗卫生",
        "执业医师注册统计",
        [
            "年度:year",
            "所属街道:street",
            "执业医师数:int:10:600",
            "执业助理医师数:int:0:120",
            "注册护士数:int:20:900",
        ],
        "医师 统计",
    ),
    (
        "dcf-scjgj",
        "市场监管",
        "药品零售企业名录",
        [
            "企业名称:pharmacy",
            "统一社会信用代码:uscc",
            "经营方式:choice:零售连锁|单体药店",
            "所属街道:street",
            "经营地址:address",
            "许可证编号:seq:鲁DA635",
            "有效期至:date:2025:2030",
        ],
        "药品 药店 许可",
    ),
    (
        "dcf-scjgj",
        "市场监管",
        "食品经营许可信息",
        [
            "经营者名称:company:餐饮|食品|超市",
            "统一社会信用代码:uscc",
            "主体业态:choice:餐饮服务经营者|食品销售经营者|单位食堂",
            "经营场所:address",
            "许可证编号:seq:JY13715020",
            "发证日期:date:2019:2026",
        ],
        "食品 许可",
    ),
    (
        "dcf-scjgj",
        "市场监管",
        "特种设备使用登记信息",
        [
            "使用单位:company:物业|商贸|医院",
            "设备类别:choice:电梯|锅炉|压力容器|起重机械",
            "设备数量:int:1:40",
            "所属街道:street",
            "登记日期:date:2016:2026",
        ],
        "特种设备 电梯",
    ),
    (
        "dcf-scjgj",
        "信用服务",
        "行政处罚信息公示",
        [
            "当事人名称:company:商贸|餐饮|建材",
            "统一社会信用代码:uscc",
            "处罚决定书文号:seq:东市监罚字",
            "违法类型:choice:虚假宣传|无证经营|标签不合格|价格违法",
            "罚款金额（元）:int:500:200000",
            "处罚日期:date:2020:2026",
        ],
        "行政处罚 信用",
    ),
    (
        "dcf-jtysj",
        "交通运输",
        "公交线路信息",
        [
            "线路编号:seq:K",
            "起点站:stop",
            "终点站:stop",
            "首班时间:choice:05:30|06:00|06:30",
            "末班时间:choice:19:00|20:30|21:30",
            "票价（元）:choice:1|2",
            "线路长度（公里）:float:6:38",
        ],
        "公交 线路",
    ),
    (
        "dcf-jtysj",
        "交通运输",
        "公交站点位置",
        ["站点名称:stop", "所属线路:seq:K", "所属街道:street", "经度:lon", "纬度:lat"],
        "公交 站点",
    ),
    (
        "dcf-jtysj",
        "交通运输",
        "道路运输经营许可信息",
        [
            "业户名称:company:运输|物流|客运",
            "经营范围:choice:普通货运|道路旅客运输|危险货物运输",
            "许可证号:seq:鲁交运管许可聊字",
            "有效期至:date:2025:2031",
        ],
        "运输 许可",
    ),
    (
        "dcf-zrzyj",
        "自然资源",
        "国有建设用地供应信息",
        [
            "宗地编号:seq:DCF-G",
            "宗地位置:address",
            "用途:choice:住宅用地|商服用地|工业用地|公共管理与公共服务用地",
            "面积（平方米）:float:800:90000",
            "供应方式:choice:挂牌出让|划拨|协议出让",
            "成交日期:date:2018:2026",
        ],
        "土地 供应",
    ),
    (
        "dcf-zrzyj",
        "自然资源",
        "不动产登记服务网点",
        [
            "网点名称:office:不动产登记服务",
            "地址:address",
            "服务时间:choice:工作日 09:00-17:00|周一至周六 08:30-17:30",
            "联系电话:landline",
            "经度:lon",
            "纬度:lat",
        ],
        "不动产 登记",
    ),
    (
        "dcf-mzj",
        "民政服务",
        "养老服务机构名录",
        [
            "机构名称:eldercare",
            "机构性质:choice:公办|民办|公建民营",
            "所属街道:street",
            "地址:address",
            "床位数:int:20:400",
            "联系电话:landline",
        ],
        "养老 民政",
    ),
    (
        "dcf-mzj",
        "民政服务",
        "婚姻登记机关信息",
        [
            "登记机关:office:婚姻登记",
            "地址:address",
            "办公时间:choice:周一至周五 09:00-17:00",
            "联系电话:landline",
        ],
        "婚姻 登记",
    ),
    (
        "dcf-mzj",
        "民政服务",
        "社会组织登记信息",
        [
            "社会组织名称:society",
            "类型:choice:社会团体|民办非企业单位|基金会",
            "业务主管单位:choice:区教体局|区民政局|区文旅局|区卫健局",
            "成立日期:date:2005:2026",
            "注册资金（万元）:int:3:500",
        ],
        "社会组织",
    ),
    (
        "dcf-wlj",
        "文化旅游",
        "A级旅游景区名录",
        [
            "景区名称:scenic",
            "等级:choice:AAAAA|AAAA|AAA|AA",
            "地址:address",
            "开放时间:choice:08:00-18:00|全天开放",
            "经度:lon",
            "纬度:lat",
        ],
        "旅游 景区 古城",
    ),
    (
        "dcf-wlj",
        "文化旅游",
        "公共文化设施信息",
        [
            "设施名称:venue",
            "设施类型:choice:图书馆|文化馆|综合文化站|农家书屋",
            "所属街道:street",
            "地址:address",
            "联系电话:landline",
        ],
        "文化 图书馆",
    ),
    (
        "dcf-wlj",
        "文化旅游",
        "星级饭店名录",
        [
            "饭店名称:company:大酒店|宾馆|饭店",
            "星级:choice:五星|四星|三星",
            "地址:address",
            "客房数:int:40:420",
            "联系电话:landline",
        ],
        "酒店 住宿",
    ),
    (
        "dcf-rsj",
        "社会保障",
        "职业技能培训机构名录",
        [
            "机构名称:company:职业培训学校|技工学校",
            "培训工种:choice:电工|焊工|育婴员|中式烹调师|养老护理员",
            "地址:address",
            "联系电话:landline",
        ],
        "就业 培训",
    ),
    (
        "dcf-rsj",
        "社会保障",
        "招聘岗位信息",
        [
            "用人单位:company:有限公司|科技有限公司",
            "岗位名称:choice:操作工|会计|销售代表|软件工程师|护工",
            "招聘人数:int:1:30",
            "月薪下限（元）:int:2500:6000",
            "月薪上限（元）:int:6000:15000",
            "工作地点:street",
            "发布日期:date:2025:2026",
        ],
        "招聘 就业",
    ),
    (
        "dcf-zjj",
        "城建住房",
        "商品房预售许可信息",
        [
            "项目名称:estate",
            "开发企业:company:置业有限公司|房地产开发有限公司",
            "预售许可证号:seq:聊房预售东字",
            "预售面积（平方米）:float:5000:120000",
            "发证日期:date:2018:2026",
        ],
        "商品房 预售",
    ),
    (
        "dcf-zjj",
        "城建住房",
        "物业服务企业名录",
        [
            "企业名称:company:物业管理有限公司|物业服务有限公司",
            "统一社会信用代码:uscc",
            "服务项目数:int:1:25",
            "地址:address",
            "联系电话:landline",
        ],
        "物业",
    ),
    (
        "dcf-nyncj",
        "农业农村",
        "农民专业合作社名录",
        [
            "合作社名称:coop",
            "所属街道:street",
            "主营业务:choice:蔬菜种植|小麦种植|生猪养殖|食用菌|葡萄种植",
            "成员数:int:5:300",
            "成立日期:date:2008:2025",
        ],
        "合作社 农业",
    ),
    (
        "dcf-nyncj",
        "农业农村",
        "农产品质量安全抽检结果",
        [
            "抽检产品:choice:黄瓜|番茄|韭菜|芹菜|鸡蛋|猪肉",
            "抽检地点:street",
            "抽检日期:date:2024:2026",
            "检测结果:choice:合格|合格|合格|不合格",
        ],
        "农产品 抽检",
    ),
    (
        "dcf-slj",
        "自然资源",
        "河道水位监测数据",
        [
            "监测站:choice:徒骇河东昌府站|运河聊城站|马颊河堂邑站|小湄河站",
            "监测时间:datetime:2025:2026",
            "水位（米）:float:28:36",
            "流量（立方米每秒）:float:0:180",
        ],
        "水位 河道 水文",
    ),
    (
        "dcf-slj",
        "农业农村",
        "农村供水工程信息",
        [
            "工程名称:office:供水站",
            "所属街道:street",
            "供水规模（吨每日）:int:100:20000",
            "受益人口:int:500:60000",
            "建成年份:int:1998:2024",
        ],
        "供水 农村",
    ),
    (
        "dcf-yjj",
        "安全生产",
        "应急避难场所",
        [
            "场所名称:venue",
            "场所类型:choice:公园|广场|学校操场|体育场",
            "可容纳人数:int:500:30000",
            "地址:address",
            "经度:lon",
            "纬度:lat",
        ],
        "应急 避难",
    ),
    (
        "dcf-yjj",
        "安全生产",
        "危险化学品经营许可信息",
        [
            "企业名称:company:化工有限公司|石油销售有限公司",
            "统一社会信用代码:uscc",
            "许可范围:choice:汽油、柴油|液化石油气|工业气体",
            "许可证编号:seq:鲁聊危化经字",
            "有效期至:date:2025:2029",
        ],
        "危化品 许可",
    ),
    (
        "dcf-czj",
        "财税金融",
        "政府采购项目信息",
        [
            "项目名称:project",
            "采购方式:choice:公开招标|竞争性磋商|询价|单一来源",
            "预算金额（万元）:float:5:2000",
            "中标供应商:company:有限公司|科技有限公司",
            "公告日期:date:2022:2026",
        ],
        "政府采购 财政",
    ),
    (
        "dcf-tjj",
        "经济建设",
        "主要经济指标",
        [
            "年度:year",
            "地区生产总值（亿元）:float:380:620",
            "一般公共预算收入（亿元）:float:20:45",
            "社会消费品零售总额（亿元）:float:180:330",
            "城镇居民人均可支配收入（元）:int:32000:48000",
        ],
        "统计 经济",
    ),
    (
        "dcf-tjj",
        "经济建设",
        "分街道人口统计",
        [
            "年度:year",
            "街道（镇）:street",
            "常住人口（人）:int:18000:160000",
            "户数（户）:int:6000:60000",
            "城镇化率（%）:float:30:98",
        ],
        "人口 统计",
    ),
    (
        "dcf-sthjj",
        "生态环境",
        "空气质量日报",
        [
            "日期:date:2025:2026",
            "监测点:choice:聊城大学|市环保局|开发区管委会|东昌府区政府",
            "AQI:int:20:260",
            "首要污染物:choice:PM2.5|PM10|O3|NO2|—",
            "PM2.5（微克每立方米）:int:5:180",
        ],
        "空气质量 环境",
    ),
    (
        "dcf-sthjj",
        "生态环境",
        "排污许可信息",
        [
            "单位名称:company:热电有限公司|纸业有限公司|食品有限公司",
            "统一社会信用代码:uscc",
            "行业类别:choice:热电联产|造纸|食品制造|金属制品",
            "许可证编号:seq:91371502",
            "有效期至:date:2025:2030",
        ],
        "排污 许可",
    ),
    (
        "dcf-gaj",
        "公共安全",
        "户籍业务办理网点",
        [
            "网点名称:office:派出所户籍室",
            "地址:address",
            "办公时间:choice:工作日 08:30-17:30",
            "联系电话:landline",
            "经度:lon",
            "纬度:lat",
        ],
        "户籍 派出所",
    ),
    (
        "dcf-gaj",
        "公共安全",
        "交通事故多发路段",
        [
            "路段名称:road",
            "所属街道:street",
            "年度事故数:int:3:60",
            "主要原因:choice:超速|闯红灯|占道|酒驾",
            "经度:lon",
            "纬度:lat",
        ],
        "交通安全",
    ),
    (
        "dcf-sfj",
        "公共安全",
        "公共法律服务站点",
        ["站点名称:office:公共法律服务站", "所属街道:street", "地址:address", "联系电话:landline"],
        "法律服务",
    ),
    (
        "dcf-sfj",
        "机构团体",
        "律师事务所名录",
        [
            "律所名称:company:律师事务所",
            "执业许可证号:seq:3715",
            "律师人数:int:3:80",
            "地址:address",
            "联系电话:landline",
        ],
        "律师 法律",
    ),
    (
        "dcf-tyjrj",
        "社会保障",
        "退役军人服务站信息",
        ["服务站名称:office:退役军人服务站", "所属街道:street", "地址:address", "联系电话:landline"],
        "退役军人",
    ),
    (
        "dcf-ybj",
        "医疗卫生",
        "医保定点医药机构",
        [
            "机构名称:pharmacy",
            "机构类型:choice:定点医院|定点药店|定点诊所",
            "所属街道:street",
            "地址:address",
            "联系电话:landline",
        ],
        "医保 定点 药品",
    ),
    (
        "dcf-ybj",
        "社会保障",
        "医保基金支出统计",
        [
            "年度:year",
            "月份:int:1:12",
            "住院支出（万元）:float:800:4000",
            "门诊支出（万元）:float:300:2200",
            "药店支出（万元）:float:100:900",
        ],
        "医保 统计",
    ),
    (
        "dcf-xzspj",
        "经济建设",
        "企业设立登记信息",
        [
            "企业名称:company:有限公司|科技有限公司|商贸有限公司",
            "统一社会信用代码:uscc",
            "企业类型:choice:有限责任公司|个人独资企业|股份有限公司",
            "注册资本（万元）:int:10:5000",
            "成立日期:date:2020:2026",
            "所属街道:street",
        ],
        "企业 登记 营业执照",
    ),
    (
        "dcf-xzspj",
        "经济建设",
        "政务服务事项清单",
        [
            "事项名称:choice:企业开办|个体工商户注册|食品经营许可|建筑工程施工许可|道路运输经营许可",
            "事项类型:choice:行政许可|公共服务|行政确认",
            "办理时限（工作日）:int:1:20",
            "是否网上可办:choice:是|否",
            "收费标准:choice:不收费|按规定收费",
        ],
        "政务服务 审批",
    ),
    (
        "dcf-zhzfj",
        "城建住房",
        "公共停车场信息",
        [
            "停车场名称:venue",
            "地址:address",
            "泊位数:int:30:900",
            "收费标准:choice:首小时2元|免费|每次5元",
            "经度:lon",
            "纬度:lat",
        ],
        "停车场 停车",
    ),
    (
        "dcf-zhzfj",
        "城建住房",
        "公共厕所位置",
        [
            "名称:toilet",
            "所属街道:street",
            "类型:choice:独立式|附建式|移动式",
            "开放时间:choice:全天|06:00-22:00",
            "经度:lon",
            "纬度:lat",
        ],
        "公厕 环卫",
    ),
    (
        "dcf-swj",
        "经济建设",
        "重点招商项目",
        [
            "项目名称:project",
            "所属行业:choice:新材料|装备制造|现代物流|食品加工|文化旅游",
            "总投资（亿元）:float:0.5:60",
            "项目地点:street",
            "签约日期:date:2021:2026",
        ],
        "招商 投资",
    ),
    (
        "dcf-swj",
        "市场监管",
        "成品油零售网点",
        [
            "网点名称:company:加油站",
            "地址:address",
            "油品:choice:92#、95#、0#柴油|92#、95#",
            "经度:lon",
            "纬度:lat",
        ],
        "加油站 成品油",
    ),
    (
        "dcf-fgj",
        "经济建设",
        "重点建设项目",
        [
            "项目名称:project",
            "建设单位:company:建设有限公司|投资有限公司",
            "总投资（亿元）:float:0.3:80",
            "建设起止年限:choice:2023-2025|2024-2026|2025-2027",
            "所属街道:street",
        ],
        "重点项目 建设",
    ),
    (
        "dcf-gxj",
        "经济建设",
        "规模以上工业企业名录",
        [
            "企业名称:company:制造有限公司|机械有限公司|纺织有限公司",
            "统一社会信用代码:uscc",
            "所属行业:choice:轴承制造|农副食品加工|纺织业|专用设备制造",
            "所属街道:street",
        ],
        "工业 企业",
    ),
    (
        "dcf-kjj",
        "科技创新",
        "高新技术企业名单",
        [
            "企业名称:company:科技有限公司|生物技术有限公司",
            "统一社会信用代码:uscc",
            "证书编号:seq:GR2024370",
            "认定年度:year",
            "技术领域:choice:电子信息|生物与新医药|新材料|先进制造与自动化",
        ],
        "高新技术 科技",
    ),
    (
        "dcf-sjj",
        "财税金融",
        "审计整改情况公告",
        [
            "被审计单位:office:中心",
            "审计项目:project",
            "问题数量:int:0:15",
            "已整改数量:int:0:15",
            "公告日期:date:2021:2026",
        ],
        "审计",
    ),
    (
        "dcf-swju",
        "财税金融",
        "纳税信用A级纳税人名单",
        ["纳税人名称:company:有限公司|股份有限公司", "纳税人识别号:uscc", "评价年度:year"],
        "纳税 信用",
    ),
    (
        "dcf-swju",
        "财税金融",
        "办税服务厅信息",
        [
            "服务厅名称:office:办税服务厅",
            "地址:address",
            "办公时间:choice:工作日 09:00-17:00",
            "咨询电话:landline",
        ],
        "办税",
    ),
    (
        "dcf-cl",
        "民政服务",
        "残疾人康复机构名录",
        [
            "机构名称:company:康复中心|康复服务中心",
            "服务类型:choice:肢体康复|听力言语康复|智力康复|孤独症康复",
            "地址:address",
            "联系电话:landline",
        ],
        "残疾人 康复",
    ),
    (
        "dcf-daj",
        "教育文化",
        "馆藏档案目录",
        [
            "全宗号:seq:DCF-",
            "全宗名称:office:委员会",
            "起止年度:choice:1949-1965|1966-1985|1986-2000|2001-2015",
            "案卷数量:int:10:5000",
        ],
        "档案",
    ),
    (
        "dcf-gxs",
        "农业农村",
        "农资经营网点",
        [
            "网点名称:company:农资有限公司|农资服务站",
            "所属街道:street",
            "经营范围:choice:化肥、农药|种子、化肥|农机配件",
            "联系电话:landline",
        ],
        "农资",
    ),
    (
        "dcf-fl",
        "民政服务",
        "妇女儿童之家名录",
        ["名称:office:妇女儿童之家", "所属街道:street", "地址:address", "联系电话:landline"],
        "妇女 儿童",
    ),
    (
        "dcf-jrj",
        "财税金融",
        "地方金融组织名录",
        [
            "机构名称:company:小额贷款有限公司|融资担保有限公司",
            "统一社会信用代码:uscc",
            "机构类型:choice:小额贷款公司|融资担保公司|典当行",
            "注册资本（万元）:int:1000:50000",
        ],
        "金融",
    ),
    (
        "dcf-qxj",
        "气象服务",
        "逐日气象观测数据",
        [
            "日期:date:2024:2026",
            "站点:choice:聊城国家基本气象站|东昌府区区域站",
            "最高气温（℃）:float:-8:40",
            "最低气温（℃）:float:-16:28",
            "降水量（毫米）:float:0:90",
            "风向:choice:北|东北|东|东南|南|西南|西|西北",
        ],
        "气象 天气",
    ),
]

# The English titles the departments gave (the console's 英文名称, Dataset.edits["title_en"]).
TITLES_EN = {
    "中小学校名录": "Primary and secondary schools",
    "幼儿园名录": "Kindergartens",
    "公共体育场馆信息": "Public sports venues",
    "医疗机构名录": "Medical institutions (hospitals, health centres, clinics)",
    "预防接种门诊信息": "Vaccination clinics",
    "执业医师注册统计": "Registered doctors and nurses (statistics)",
    "药品零售企业名录": "Retail pharmacies",
    "食品经营许可信息": "Food business licences",
    "特种设备使用登记信息": "Special equipment registrations (lifts, boilers, pressure vessels)",
    "行政处罚信息公示": "Administrative penalties",
    "公交线路信息": "Bus routes",
    "公交站点位置": "Bus stops",
    "道路运输经营许可信息": "Road transport operating licences",
    "国有建设用地供应信息": "State-owned construction land supply",
    "不动产登记服务网点": "Real estate registration service points",
    "养老服务机构名录": "Elderly care institutions",
    "婚姻登记机关信息": "Marriage registration offices",
    "社会组织登记信息": "Registered social organisations",
    "A级旅游景区名录": "A-grade tourist attractions",
    "公共文化设施信息": "Public cultural facilities (libraries, cultural centres)",
    "星级饭店名录": "Star-rated hotels",
    "职业技能培训机构名录": "Vocational training institutions",
    "招聘岗位信息": "Job vacancies",
    "商品房预售许可信息": "Pre-sale permits for new housing",
    "物业服务企业名录": "Property management companies",
    "农民专业合作社名录": "Farmers' cooperatives",
    "农产品质量安全抽检结果": "Farm produce safety sampling results",
    "河道水位监测数据": "River water levels",
    "农村供水工程信息": "Rural water supply works",
    "应急避难场所": "Emergency shelters",
    "危险化学品经营许可信息": "Hazardous chemicals business licences",
    "政府采购项目信息": "Government procurement projects",
    "主要经济指标": "Main economic indicators",
    "分街道人口统计": "Population by subdistrict",
    "空气质量日报": "Daily air quality",
    "排污许可信息": "Pollutant discharge permits",
    "户籍业务办理网点": "Household registration offices",
    "交通事故多发路段": "Road accident black spots",
    "公共法律服务站点": "Public legal service points",
    "律师事务所名录": "Law firms",
    "退役军人服务站信息": "Veterans service stations",
    "医保定点医药机构": "Designated medical insurance hospitals and pharmacies",
    "医保基金支出统计": "Medical insurance fund spending",
    "企业设立登记信息": "New business registrations",
    "政务服务事项清单": "Government service items",
    "公共停车场信息": "Public car parks",
    "公共厕所位置": "Public toilets",
    "重点招商项目": "Key investment promotion projects",
    "成品油零售网点": "Petrol stations",
    "重点建设项目": "Key construction projects",
    "规模以上工业企业名录": "Industrial enterprises above designated size",
    "高新技术企业名单": "High-tech enterprises",
    "审计整改情况公告": "Audit findings and corrections",
    "纳税信用A级纳税人名单": "A-rated taxpayers",
    "办税服务厅信息": "Tax service halls",
    "残疾人康复机构名录": "Rehabilitation centres for people with disabilities",
    "馆藏档案目录": "Archive holdings",
    "农资经营网点": "Farm supply shops (fertiliser, seeds, pesticides)",
    "妇女儿童之家名录": "Women and children's centres",
    "地方金融组织名录": "Local financial organisations (microcredit, guarantees)",
    "逐日气象观测数据": "Daily weather observations",
    "出生医学证明签发统计": "Birth certificates issued (statistics)",
    "社会保险参保单位缴费信息": "Social insurance contributions by employer",
    "企业信用风险分类结果": "Business credit risk classification",
    "房屋网签备案信息": "Online housing sale contracts",
    "网约车订单统计": "Ride-hailing orders (statistics)",
    "医保结算明细（脱敏）": "Medical insurance settlements (anonymised)",
}


def _sandbox_grant(s, reviewer, company, application, today: dt.date) -> None:  # noqa: ANN001
    """One application approved for sandbox delivery and accepted: the demo company can try the
    data sandbox (/sandbox) at once."""
    import hashlib

    from licenses import applications as apps
    from licenses import grants

    apps.approve(
        s,
        reviewer,
        application,
        application.version,
        fields={},
        row_filters={},
        valid_from=today,
        valid_until=today + dt.timedelta(days=180),
        note="演示：同意以数据沙箱交付（数据不出域）",
        delivery="sandbox",
    )
    s.flush()
    site = "http://127.0.0.1:5000"
    text = grants.agreement_for(application, site)
    grants.accept(
        s, company, application, application.version, hashlib.sha256(text.encode()).hexdigest(), site
    )


def title_en(title: str) -> str | None:
    """The English title of a demo entry's title (2025年东昌府区公交线路信息 → Bus routes (2025))."""
    import re

    m = re.fullmatch(r"(?:(\d{4})年)?东昌府区(.+)", title)
    english = TITLES_EN.get(m.group(2)) if m else None
    if not english:
        return None
    return f"{english} ({m.group(1)})" if m.group(1) else english  # type: ignore[union-attr]


def add_english_titles(sessions) -> int:  # noqa: ANN001
    """The departments' English titles, as their console edits would set them (demo data);
    marks the datasets for the search index. Returns how many were given one."""
    from sqlalchemy import select

    from portal.models import Dataset

    n = 0
    with sessions() as s:
        for ds in s.scalars(select(Dataset)):
            english = title_en(ds.title)
            if english and (ds.edits or {}).get("title_en") != english:
                ds.edits = {**(ds.edits or {}), "title_en": english}
                ds.search_dirty = True
                n += 1
        s.commit()
    return n


# Conditional and not-open entries: (department, domain, title, columns, basis index)
RESTRICTED = [
    (
        "dcf-wjj",
        "医疗卫生",
        "出生医学证明签发统计",
        ["年度:year", "所属街道:street", "签发数量:int:100:3000"],
        "conditional",
    ),
    (
        "dcf-rsj",
        "社会保障",
        "社会保险参保单位缴费信息",
        [
            "单位名称:company:有限公司",
            "统一社会信用代码:uscc",
            "参保人数:int:3:800",
            "缴费基数合计（元）:int:10000:4000000",
        ],
        "conditional",
    ),
    (
        "dcf-scjgj",
        "信用服务",
        "企业信用风险分类结果",
        ["企业名称:company:有限公司", "统一社会信用代码:uscc", "风险等级:choice:A|B|C|D"],
        "conditional",
    ),
    (
        "dcf-zjj",
        "城建住房",
        "房屋网签备案信息",
        [
            "项目名称:estate",
            "网签套数:int:1:300",
            "成交均价（元每平方米）:int:6000:14000",
            "备案月份:date:2024:2026",
        ],
        "conditional",
    ),
    (
        "dcf-jtysj",
        "交通运输",
        "网约车订单统计",
        ["日期:date:2025:2026", "所属街道:street", "订单量:int:200:9000", "平均里程（公里）:float:3:15"],
        "conditional",
    ),
    (
        "dcf-ybj",
        "医疗卫生",
        "医保结算明细（脱敏）",
        [
            "结算月份:date:2025:2026",
            "机构名称:hospital",
            "病种:choice:高血压|糖尿病|肺炎|骨折",
            "结算金额（元）:int:100:80000",
        ],
        "conditional",
    ),
    (
        "dcf-gaj",
        "公共安全",
        "重点场所视频监控点位",
        ["点位编号:seq:DCF-SP", "所属街道:street", "经度:lon", "纬度:lat"],
        "not_open",
    ),
    (
        "dcf-mzj",
        "民政服务",
        "低保对象名册",
        ["户主姓名:person", "身份证号:idcard", "所属街道:street", "保障人数:int:1:6"],
        "not_open",
    ),
    (
        "dcf-tjj",
        "经济建设",
        "统计调查原始记录",
        ["调查对象:company:有限公司", "统一社会信用代码:uscc", "营业收入（万元）:int:10:90000"],
        "not_open",
    ),
    (
        "dcf-sjj",
        "财税金融",
        "审计工作底稿",
        ["项目名称:project", "底稿编号:seq:SJ", "页数:int:1:300"],
        "not_open",
    ),
]


@dataclass
class DemoEntry:
    department: tuple[str, str, str]
    code: str
    title: str
    domain: str
    columns: list[str]
    tags: str
    open_class_text: str | None
    legal_basis: str | None
    conditions: str | None = None
    cycle: str = "每年"
    published: dt.date = dt.date(2024, 1, 1)
    data_file: str | None = None
    file_format: str = "csv"
    file_encoding: str = "utf-8"
    problem: str | None = None  # which problem this entry carries, if any
    extra: dict = field(default_factory=dict)


class _Row:
    """Values for one column kind. Deterministic through the shared Random."""

    def __init__(self, rnd: random.Random, year: int) -> None:
        self.r, self.y = rnd, year

    def street(self, *_: str) -> str:
        return self.r.choice(STREETS)

    def address(self, *_: str) -> str:
        return f"聊城市东昌府区{self.r.choice(STREETS)}{self.r.choice(ROADS)}{self.r.randint(1, 399)}号"

    def road(self, *_: str) -> str:
        return f"{self.r.choice(ROADS)}（{self.r.choice(ROADS)}至{self.r.choice(ROADS)}段）"

    def landline(self, *_: str) -> str:
        return f"0635-{self.r.randint(2100000, 8999999)}"

    def lon(self, *_: str) -> str:
        return f"{115.98 + self.r.uniform(-0.18, 0.18):.6f}"

    def lat(self, *_: str) -> str:
        return f"{36.45 + self.r.uniform(-0.14, 0.14):.6f}"

    def int(self, lo: str = "0", hi: str = "100") -> str:
        return str(self.r.randint(int(lo), int(hi)))

    def float(self, lo: str = "0", hi: str = "100") -> str:
        return f"{self.r.uniform(float(lo), float(hi)):.2f}"

    def choice(self, options: str = "") -> str:
        return self.r.choice(options.split("|"))

    def date(self, y0: str = "2020", y1: str = "2026") -> str:
        start = dt.date(int(y0), 1, 1)
        return (start + dt.timedelta(days=self.r.randint(0, 365 * (int(y1) - int(y0)) + 300))).isoformat()

    def datetime(self, y0: str = "2025", y1: str = "2026") -> str:
        return f"{self.date(y0, y1)} {self.r.randint(0, 23):02d}:00:00"

    def year(self, *_: str) -> str:
        return str(self.y)

    def seq(self, prefix: str = "") -> str:
        return f"{prefix}{self.r.randint(1, 999999):06d}"

    def uscc(self, *_: str) -> str:
        body = f"91371502MA{self.r.randint(0, 9)}{''.join(self.r.choice('0123456789ABCDEFGHJKLMNPQRTUWXY') for _ in range(5))}"
        return body + uscc.calc_check_digit(body)

    def company(self, suffixes: str = "有限公司") -> str:
        return f"聊城市{self.r.choice(BRANDS)}{self.r.choice(BRANDS)}{self.r.choice(suffixes.split('|'))}"

    def _place(self, kind: str) -> str:
        return f"东昌府区{self.r.choice(STREETS)}{kind}"

    def school(self, *_: str) -> str:
        return f"聊城市东昌府区{self.r.choice(STREETS).removesuffix('街道').removesuffix('镇')}{self.r.choice(['中心小学', '实验小学', '中学', '第二实验学校'])}"

    def kindergarten(self, *_: str) -> str:
        return f"东昌府区{self.r.choice(BRANDS)}幼儿园"

    def venue(self, *_: str) -> str:
        return f"{self.r.choice(BRANDS)}{self.r.choice(['体育公园', '文化广场', '全民健身中心', '综合文化站', '公共停车场'])}"

    def hospital(self, *_: str) -> str:
        return self._place(self.r.choice(["卫生院", "社区卫生服务中心", "卫生室"]))

    def clinic(self, *_: str) -> str:
        return self._place("预防接种门诊")

    def pharmacy(self, *_: str) -> str:
        return f"聊城市{self.r.choice(BRANDS)}{self.r.choice(['大药房', '医药连锁', '药店'])}{self.r.choice(STREETS)}店"

    def stop(self, *_: str) -> str:
        return f"{self.r.choice(ROADS)}{self.r.choice(['站', '口', '路口', '小区'])}"

    def office(self, kind: str = "") -> str:
        return self._place(kind)

    def eldercare(self, *_: str) -> str:
        return f"东昌府区{self.r.choice(BRANDS)}{self.r.choice(['养老院', '颐养中心', '老年公寓'])}"

    def society(self, *_: str) -> str:
        return f"东昌府区{self.r.choice(['书法家协会', '志愿者协会', '足球协会', '养老服务协会', '青年企业家商会'])}"

    def scenic(self, *_: str) -> str:
        return self.r.choice(
            [
                "东昌湖景区",
                "光岳楼",
                "山陕会馆",
                "中国运河文化博物馆",
                "铁塔",
                "古城景区",
                "江北水城旅游度假区",
                "范筑先纪念馆",
            ]
        )

    def estate(self, *_: str) -> str:
        return f"{self.r.choice(BRANDS)}{self.r.choice(['华府', '名苑', '花园', '水岸城'])}{self.r.choice(['一期', '二期', '三期'])}"

    def coop(self, *_: str) -> str:
        return f"东昌府区{self.r.choice(STREETS)}{self.r.choice(BRANDS)}{self.r.choice(['蔬菜', '种植', '养殖'])}专业合作社"

    def project(self, *_: str) -> str:
        return f"东昌府区{self.r.choice(['老旧小区改造', '道路提升', '智慧城市', '污水管网', '校舍建设', '农村供水'])}项目（{self.r.choice(STREETS)}）"

    def toilet(self, *_: str) -> str:
        return f"{self.r.choice(ROADS)}公厕"

    def person(self, *_: str) -> str:
        return self.r.choice(SURNAMES) + self.r.choice(GIVEN) + self.r.choice(GIVEN)

    def idcard(self, *_: str) -> str:
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=self.r.randint(0, 25000))
        body = f"371502{birth:%Y%m%d}{self.r.randint(100, 999)}"
        return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit

    def mobile(self, *_: str) -> str:
        return f"1{self.r.choice('3578')}{self.r.randint(100000000, 999999999)}"


def _rows(columns: list[str], n: int, rnd: random.Random, year: int) -> tuple[list[str], list[list[str]]]:
    gen = _Row(rnd, year)
    specs = []
    for column in columns:
        name, kind, *rest = column.split(":", 2)
        # choice options may hold colons (08:00-21:00); other kinds take lo:hi style arguments
        args = rest if kind == "choice" else (rest[0].split(":") if rest else [])
        specs.append((name, getattr(gen, kind), args))
    header = [name for name, _, _ in specs]
    rows = [[make(*args) for _, make, args in specs] for _ in range(n)]
    return header, rows


def plan(entries: int = 520, seed: int = 2020) -> list[DemoEntry]:
    """Which entries the catalog holds; at least `entries` of them."""
    rnd = random.Random(seed)
    depts = {d[0]: d for d in DEPARTMENTS}
    seq: dict[str, int] = {}
    out: list[DemoEntry] = []

    def code_for(dept: tuple[str, str, str]) -> str:
        seq[dept[0]] = seq.get(dept[0], 0) + 1
        return f"371502-{dept[2]}-{seq[dept[0]]:04d}"

    for dept_code, domain, title, columns, kind in RESTRICTED:
        dept = depts[dept_code]
        basis = rnd.choice(CONDITIONAL_BASES if kind == "conditional" else NOT_OPEN_BASES)
        out.append(
            DemoEntry(
                dept,
                code_for(dept),
                f"东昌府区{title}",
                domain,
                columns,
                "",
                "有条件开放" if kind == "conditional" else "不予开放",
                basis,
                conditions=rnd.choice(CONDITIONS) if kind == "conditional" else None,
                cycle=rnd.choice(CYCLES),
            )
        )
    years = list(range(2026, 2015, -1))
    i = 0
    while len(out) < entries:
        dept_code, domain, title, columns, tags = TEMPLATES[i % len(TEMPLATES)]
        year = years[(i // len(TEMPLATES)) % len(years)]
        i += 1
        dept = depts[dept_code]
        full_title = f"{year}年东昌府区{title}" if i > len(TEMPLATES) else f"东昌府区{title}"
        roll = rnd.random()
        if roll < 0.72:
            cls, basis, cond = "无条件开放", UNCONDITIONAL_BASIS, None
        elif roll < 0.92:
            cls, basis, cond = "有条件开放", rnd.choice(CONDITIONAL_BASES), rnd.choice(CONDITIONS)
        else:
            cls, basis, cond = "不予开放", rnd.choice(NOT_OPEN_BASES), None
        out.append(
            DemoEntry(
                dept,
                code_for(dept),
                full_title,
                domain,
                columns,
                tags,
                cls,
                basis,
                cond,
                cycle=rnd.choice(CYCLES),
                published=dt.date(year, 1, 1) + dt.timedelta(days=rnd.randint(0, 290)),
            )
        )
    # Alternate spellings the catalog uses: English class names on some entries.
    for e in out[5::37]:
        e.open_class_text = {
            "无条件开放": "unconditional",
            "有条件开放": "conditional",
            "不予开放": "not_open",
        }[e.open_class_text or ""]
    _add_problems(out, rnd, depts, code_for)
    for n, e in enumerate(out):
        if n % 9 == 4:
            e.file_format = "xlsx"
        elif n % 7 == 3:
            e.file_encoding = "gbk"
    return out


def _add_problems(
    out: list[DemoEntry], rnd: random.Random, depts: dict, code_for: Callable[[tuple[str, str, str]], str]
) -> None:
    def add(
        dept_code: str,
        title: str,
        columns: list[str],
        cls: str | None,
        basis: str | None,
        problem: str,
        **kw: Any,
    ) -> DemoEntry:
        dept = depts[dept_code]
        e = DemoEntry(
            dept,
            code_for(dept),
            title,
            kw.pop("domain", "民政服务"),
            columns,
            "",
            cls,
            basis,
            problem=problem,
            **kw,
        )
        out.append(e)
        return e

    add(
        "dcf-mzj",
        "东昌府区临时救助发放明细",
        ["救助对象:person", "所属街道:street", "救助金额（元）:int:300:5000"],
        "有条件开放",
        None,
        "no_legal_basis",
        conditions="仅限社会服务用途",
    )
    add(
        "dcf-ybj",
        "东昌府区大病保险赔付统计",
        ["年度:year", "赔付人次:int:10:900"],
        "不予开放",
        "无",
        "no_legal_basis",
        domain="医疗卫生",
    )
    add(
        "dcf-wlj",
        "东昌府区非遗传承人名录",
        ["项目名称:scenic", "所属街道:street"],
        "部分开放",
        UNCONDITIONAL_BASIS,
        "unknown_class",
        domain="文化旅游",
    )
    add(
        "dcf-nyncj",
        "东昌府区高标准农田建设项目",
        ["项目名称:project", "面积（亩）:int:500:20000"],
        None,
        None,
        "missing_class",
        domain="农业农村",
    )
    add(
        "dcf-rsj",
        "东昌府区公益性岗位人员名单",
        ["姓名:person", "身份证号:idcard", "岗位:choice:保洁|护林|协管"],
        "无条件开放",
        UNCONDITIONAL_BASIS,
        "pii_id",
        domain="社会保障",
    )
    add(
        "dcf-cl",
        "东昌府区助残志愿者名单",
        ["姓名:person", "联系电话:mobile", "所属街道:street"],
        "无条件开放",
        UNCONDITIONAL_BASIS,
        "pii_mobile",
    )
    add(
        "dcf-jtj",
        "东昌府区校车线路信息",
        ["线路:seq:XC", "学校:school"],
        "无条件开放",
        UNCONDITIONAL_BASIS,
        "corrupt_file",
        domain="教育文化",
        file_format="xlsx",
    )
    add(
        "dcf-wjj",
        "东昌府区家庭医生签约团队",
        ["团队名称:hospital", "所属街道:street"],
        "无条件开放",
        UNCONDITIONAL_BASIS,
        "missing_file",
        domain="医疗卫生",
    )
    add(
        "dcf-zjj",
        "东昌府区保障性住房项目",
        ["项目名称:estate", "套数:int:50:800"],
        "无条件开放",
        UNCONDITIONAL_BASIS,
        "dead_link",
        domain="城建住房",
    )
    add("dcf-scjgj", "", ["名称:company"], "无条件开放", UNCONDITIONAL_BASIS, "broken_row", domain="市场监管")


CATALOG_HEADER = [
    "信息资源代码",
    "信息资源名称",
    "信息资源提供方",
    "信息资源提供方代码",
    "信息资源摘要",
    "数据领域",
    "信息资源格式",
    "共享类型",
    "共享条件",
    "开放类型",
    "开放条件",
    "法律依据",
    "更新周期",
    "发布日期",
    "关键词",
    "数据文件",
]


def generate_catalog(folder: Path, entries: int = 520, seed: int = 2020) -> list[Path]:
    """Write data files and one catalog spreadsheet per department; return the catalogs."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed + 1)
    planned = plan(entries, seed)
    by_dept: dict[str, list[DemoEntry]] = {}
    for e in planned:
        _write_data_file(folder, e, rnd)
        by_dept.setdefault(e.department[0], []).append(e)
    catalogs = []
    for n, (dept_code, items) in enumerate(sorted(by_dept.items())):
        rows = [_catalog_row(e) for e in items]
        style = ("xlsx", "utf-8", "utf-8-sig", "gbk")[n % 4]
        path = folder / f"{dept_code}-目录.{'xlsx' if style == 'xlsx' else 'csv'}"
        if style == "xlsx":
            _write_xlsx(path, [[f"{items[0].department[1]}政务信息资源目录"], CATALOG_HEADER, *rows])
        else:
            _write_csv(path, [CATALOG_HEADER, *rows], style)
        catalogs.append(path)
    return catalogs


def _catalog_row(e: DemoEntry) -> list[str]:
    dept_code, dept_name, _ = e.department
    if e.problem == "broken_row":
        dept_name = ""  # a row without its provider or name cannot be harvested
    share = "有条件共享" if e.open_class_text in ("有条件开放", "conditional") else "无条件共享"
    summary = (
        f"{e.title.removeprefix('东昌府区')}，由{dept_name or '（未填写）'}提供，"
        f"包括{'、'.join(c.split(':', 1)[0] for c in e.columns[:4])}等字段。"
    )
    return [
        e.code,
        e.title,
        dept_name,
        dept_code if dept_name else "",
        summary,
        e.domain,
        e.file_format.upper(),
        share,
        "",
        e.open_class_text or "",
        e.conditions or "",
        e.legal_basis or "",
        e.cycle,
        e.published.strftime("%Y年%-m月%-d日" if e.published.day % 3 == 0 else "%Y-%m-%d"),
        e.tags.replace(" ", "、"),
        e.data_file or "",
    ]


def _write_data_file(folder: Path, e: DemoEntry, rnd: random.Random) -> None:
    name = f"data/{e.code}.{e.file_format}"
    e.data_file = name
    if e.problem == "missing_file":
        e.data_file = f"data/{e.code}-缺失.csv"
        return
    if e.problem == "dead_link":
        e.data_file = f"http://127.0.0.1:9/{e.code}.csv"  # nothing listens on the discard port
        return
    if e.problem == "corrupt_file":
        (folder / name).write_bytes(b"PK\x03\x04 this workbook was cut off in transfer")
        return
    year = int(e.title[:4]) if e.title[:4].isdigit() else 2025
    header, rows = _rows(e.columns, rnd.randint(30, 240), rnd, year)
    if e.file_format == "xlsx":
        sheets = [(e.title[:28] or "数据", [header, *rows])]
        if len(rows) > 100:  # some workbooks carry a second sheet
            sheets.append(("说明", [["字段", "说明"], *[[h, f"{h}（{e.title}）"] for h in header]]))
        _write_xlsx_sheets(folder / name, sheets)
    else:
        _write_csv(folder / name, [header, *rows], e.file_encoding)


def _write_csv(path: Path, rows: list[list[str]], encoding: str) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def _write_xlsx(path: Path, rows: list[list]) -> None:
    _write_xlsx_sheets(path, [("目录", rows)])


def _write_xlsx_sheets(path: Path, sheets: list[tuple[str, list[list]]]) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for title, rows in sheets:
        ws = wb.create_sheet(title=title.replace("/", "_")[:31])
        for row in rows:
            ws.append(row)
    wb.properties.creator = "东昌府区大数据局（演示数据）"
    wb.properties.created = dt.datetime(2025, 1, 1)
    wb.properties.modified = dt.datetime(2025, 1, 1)
    wb.save(path)


class _HasSessions(Protocol):
    """What the demo needs of a PortalContext (which sits above it in the layers)."""

    sessions: sessionmaker[Session]


def demo_accounts_and_activity(ctx: _HasSessions, password: str) -> list[tuple[str, str]]:
    """Accounts to try the portal with, and some activity so the console and the dashboard
    have something to show: applications through the real services, and downloads spread
    over the last month (demo data, made here, not measured)."""
    from sqlalchemy import select

    from licenses import applications as apps
    from portal import accounts, counters
    from portal.models import Dataset, Department, User, utcnow

    made = []
    with ctx.sessions() as s:
        if s.scalar(select(User.id)) is not None:
            return []
        bureau = accounts.create_admin(s, "bureau@demo.dongchangfu.example", password, "大数据局演示账号")
        curator = accounts.register(
            s, accounts.Registration("curator@demo.dongchangfu.example", password, "市场监管局数据管理员")
        )
        company = accounts.register(
            s,
            accounts.Registration(
                "company@demo.dongchangfu.example",
                password,
                "张经理",
                "company",
                company_name="聊城市鲁西数据科技有限公司",
                credit_code="91371500MA3C56L392",
            ),
        )
        for user in (curator, company):
            user.email_verified_at = utcnow()
        accounts.verify_company(s, bureau, company)  # the demo company may bid in a tender
        curator.curator_department = s.scalar(select(Department).where(Department.code == "dcf-scjgj"))
        s.flush()
        made = [
            (u.email, role)
            for u, role in ((bureau, "大数据局"), (curator, "市场监管局管理员"), (company, "企业"))
        ]
        # the demo curator's own department first, so their console has a queue to show
        conditional = s.scalars(
            select(Dataset)
            .where(Dataset.open_class == "conditional", Dataset.status == "published")
            .order_by(Dataset.department_id != curator.curator_department_id, Dataset.id)
            .limit(6)
        ).all()
        today = clock.today()
        for i, ds in enumerate(conditional):
            [application] = apps.apply(
                s,
                company,
                apps.Request(
                    [(ds, None)],
                    ["governance", "social", "innovation"][i % 3],
                    "用于街道级城市治理分析看板，按月更新",
                    "专人管理，加密存储，访问留痕",
                    today,
                    today + dt.timedelta(days=180),
                ),
                today=today - dt.timedelta(days=3 * i),
            )
            s.flush()
            reviewer = s.scalar(select(User).where(User.curator_department_id == application.department_id))
            if reviewer is not None and i % 2 == 0:
                apps.refuse(
                    s,
                    reviewer,
                    application,
                    application.version,
                    "演示：用途与开放条件不符，请补充说明后重新申请",
                )
            elif reviewer is not None and i == 1:
                _sandbox_grant(s, reviewer, company, application, today)
        rnd = random.Random(7)
        open_ids = s.scalars(
            select(Dataset.id).where(Dataset.open_class == "unconditional", Dataset.status == "published")
        ).all()
        for day in range(30):
            for _ in range(rnd.randint(3, 25)):
                ds_id = rnd.choice(open_ids)
                # as the counters' batches write them (portal/counters.py)
                counters.upsert(s, today - dt.timedelta(days=day), "download", ds_id, 0, 1)
                s.get_one(Dataset, ds_id).download_count += 1
        s.commit()
    return made
