"""Vocabularies of the demo city, as plain data: channels, the 4-level case category tree,
case types, handling units, facility and IoT device kinds, place-name stems, and the load
mappings of the CSVs the generators write.

Shares follow what we saw in 9,990 real 坪山 民生诉求 events of 2018 (``../shared/data``):
channels @坪山 40 %, 美丽深圳 20 %, 12345 16 %, 12319 15 %, 政府信箱 5 %, 固话投诉 4 %; 18 top-level
categories led by 市容环卫 (35 %); 133 second-level and 371 third-level types; 投诉 93 %; 156
handling units; 90.8 % closed on time. The tree below has 133 second-level and 353 third-level
names written by hand (867 generated fourth-level leaves, 1,371 classes in all).

The fourth level is generated, not written: each third-level type is split by the place it
happens in (住宅小区, 城中村, 道路沿线 …) for the place-bound categories, and by how the
request is handled (一般诉求, 重复诉求, 紧急诉求, 集体诉求) for the others. Both are how real
4-level lists (坪山's has 1,285 classes) refine their third level, and hand-writing ~900
leaves would add no information a dashboard could show. The split is fixed by a checksum of
the name, so the tree is the same for every seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DISTRICT = "坪山区"

# -- channels and case types ----------------------------------------------------------------
CHANNELS: dict[str, float] = {
    "@坪山": 0.40, "美丽深圳": 0.20, "12345": 0.16, "12319": 0.15, "政府信箱": 0.05,
    "固话投诉": 0.04,
}
# How cases of a channel introduce themselves in 诉求内容.
CHANNEL_INTRO = {
    "@坪山": "群众通过@坪山反映：", "美丽深圳": "市民通过美丽深圳平台反映：",
    "12345": "市民来电12345反映：", "12319": "市民致电12319城管热线反映：",
    "政府信箱": "市民来信反映：", "固话投诉": "市民来电投诉：",
}
# Share of each channel's cases that come without coordinates (hotlines rarely have them);
# weighted by the channel shares this gives about 3 % code-only cases.
CHANNEL_CODE_ONLY = {
    "@坪山": 0.005, "美丽深圳": 0.01, "12345": 0.064, "12319": 0.064, "政府信箱": 0.072,
    "固话投诉": 0.072,
}
CASE_TYPES: dict[str, float] = {"投诉": 0.93, "求助": 0.025, "咨询": 0.03, "建议": 0.015}

# 解决层级: the level that closed the case ("琐事不出网格、小事不出社区、大事不出街道").
RESOLUTION_LEVELS: dict[str, float] = {"网格": 0.60, "社区": 0.25, "街道": 0.12, "区": 0.03}
# Share of cases closed after their deadline, by resolution level (harder cases go up and
# take longer); weighted by the level shares this is 9.2 % overdue, 90.8 % on time.
OVERDUE_BY_LEVEL = {"网格": 0.057, "社区": 0.108, "街道": 0.176, "区": 0.293}

# 办理状态 written in the export, and what the loader maps them to.
STATUS_CLOSED = "已办结"
STATUS_OPEN = ("待受理", "待分拨", "处理中")
STATUS_MAP = {STATUS_CLOSED: "closed", "已归档": "closed", "待受理": "open", "待分拨": "open",
              "处理中": "open", "已反馈": "open"}
EVALUATED_SHARE = 0.72
SATISFACTION_P = (0.025, 0.035, 0.09, 0.23, 0.62)          # 1..5, closed on time
SATISFACTION_OVERDUE_P = (0.08, 0.10, 0.20, 0.27, 0.35)    # 1..5, closed late

# -- the category tree -------------------------------------------------------------------------
# top -> (share of cases, deadline in hours, place-bound?)
TOP_CATEGORIES: dict[str, tuple[float, int, bool]] = {
    "市容环卫": (0.350, 72, True),
    "城市管理": (0.110, 120, True),
    "环境保护": (0.080, 120, True),
    "交通运输": (0.070, 120, True),
    "住房建设": (0.060, 240, True),
    "劳动保障": (0.050, 360, False),
    "教育卫生": (0.040, 168, False),
    "市场监管": (0.040, 168, False),
    "公共安全": (0.030, 48, True),
    "社区管理": (0.030, 120, True),
    "水务管理": (0.030, 72, True),
    "消防安全": (0.020, 48, True),
    "规划国土": (0.020, 360, False),
    "治安管理": (0.020, 48, True),
    "民政服务": (0.015, 168, False),
    "其他": (0.015, 120, False),
    "文化旅游": (0.010, 168, True),
    "政务服务": (0.010, 120, False),
}

# top -> second -> thirds. Listed roughly from most to least frequent.
CATEGORY_TREE: dict[str, dict[str, tuple[str, ...]]] = {
    "市容环卫": {
        "生活垃圾": ("垃圾清运不及时", "垃圾桶满溢", "垃圾分类投放不规范", "垃圾桶破损缺失"),
        "乱堆乱放": ("杂物占道堆放", "建筑垃圾乱倒", "大件垃圾乱放"),
        "占道经营": ("流动摊贩", "店外经营", "夜市摊档占道"),
        "道路保洁": ("路面不洁", "人行道积尘", "清扫不及时"),
        "户外广告": ("违规招牌", "广告牌破损", "乱张贴小广告", "违规悬挂横幅"),
        "卫生死角": ("空地积存垃圾", "河边垃圾", "绿化带垃圾"),
        "城中村环境": ("城中村脏乱差", "楼道杂物堆放", "化粪池外溢"),
        "绿化管理": ("绿地被毁", "树木倒伏", "绿化带杂草丛生", "枯枝未清理"),
        "公共厕所": ("公厕脏乱", "公厕设施损坏", "公厕未按时开放", "公厕缺少"),
        "渣土运输": ("泥头车撒漏", "车轮带泥上路", "违规消纳"),
        "餐厨垃圾": ("餐厨垃圾收运不及时", "地沟油", "隔油池溢流"),
        "沿街立面": ("沿街晾晒", "外立面脏污", "空调滴水"),
        "环卫设施": ("垃圾转运站脏乱", "垃圾屋设置", "果皮箱缺失"),
    },
    "城市管理": {
        "违法建设": ("新建违建", "楼顶加建", "围墙搭建", "违规改建"),
        "市政设施": ("路面破损", "人行道砖松动", "护栏损坏", "道路塌陷"),
        "路灯照明": ("路灯不亮", "路灯白天亮灯", "灯杆倾斜"),
        "井盖管理": ("井盖缺失", "井盖破损", "井盖异响"),
        "共享单车": ("单车乱停放", "单车堆积", "废弃单车"),
        "违规搭建": ("棚架搭建", "铁皮房", "占用公共空间"),
        "占道停车": ("人行道停车", "僵尸车", "三轮车占道停放"),
        "施工管理": ("围挡破损", "施工占道", "工地出入口脏乱"),
        "城市家具": ("候车亭损坏", "路名牌缺失", "休闲座椅损坏"),
        "架空线缆": ("电线乱拉", "通信线缆垂落", "废弃杆件"),
        "城市照明景观": ("景观灯故障", "亮化设施损坏"),
        "无障碍设施": ("盲道被占", "无障碍坡道缺失"),
    },
    "环境保护": {
        "噪声污染": ("施工噪声", "社会生活噪声", "商业噪声", "交通噪声", "工业噪声"),
        "大气污染": ("工业废气", "餐饮油烟", "露天焚烧", "扬尘污染"),
        "水污染": ("工业废水偷排", "河道污染", "生活污水直排"),
        "异味污染": ("垃圾站异味", "污水异味", "化工异味"),
        "固体废物": ("工业固废", "危险废物", "医疗废物"),
        "土壤污染": ("土壤污染", "非法填埋"),
        "光污染": ("玻璃幕墙反光", "广告屏强光"),
        "电磁辐射": ("基站辐射", "变电站辐射"),
        "环评审批": ("项目环评", "排污许可"),
        "生态保护": ("破坏林地", "捕捉野生动物"),
    },
    "交通运输": {
        "交通设施": ("信号灯故障", "交通标线不清", "交通标志缺失", "减速带损坏"),
        "道路拥堵": ("路口拥堵", "学校周边拥堵", "上下班高峰拥堵"),
        "公交服务": ("公交晚点", "线路调整建议", "司机服务态度", "站点设置"),
        "停车管理": ("停车收费", "停车场设置", "路内停车位"),
        "出租车": ("拒载", "绕路", "议价不打表"),
        "网约车": ("网约车服务", "网约车违规营运"),
        "货车管理": ("货车违规通行", "重型车辆超载"),
        "轨道交通": ("地铁服务", "地铁施工影响"),
        "慢行系统": ("非机动车道被占", "人行过街设施"),
        "道路养护": ("道路坑洼", "桥梁隐患", "隧道照明"),
    },
    "住房建设": {
        "物业管理": ("物业服务差", "物业收费", "电梯故障", "公共设施维修"),
        "房屋租赁": ("租金纠纷", "押金不退", "二房东转租"),
        "房屋安全": ("房屋开裂", "危房", "高空坠物"),
        "燃气管理": ("燃气泄漏", "燃气报装", "瓶装气安全"),
        "工程质量": ("房屋渗漏", "交房质量", "工程验收"),
        "房地产市场": ("延期交房", "商品房网签", "售楼违规宣传"),
        "城市更新": ("旧改拆迁", "回迁安置", "棚改进度"),
        "保障性住房": ("公租房申请", "人才房", "安居房"),
        "电梯加装": ("旧楼加装电梯", "电梯维保"),
    },
    "劳动保障": {
        "拖欠工资": ("拖欠农民工工资", "企业欠薪", "欠薪逃匿"),
        "劳动合同": ("未签劳动合同", "违法解除合同", "试用期纠纷"),
        "社会保险": ("社保未缴", "社保转移", "医保报销"),
        "工时休假": ("超时加班", "休假待遇"),
        "工伤": ("工伤认定", "工伤待遇"),
        "就业服务": ("招聘信息", "职业培训", "失业登记"),
        "人才政策": ("人才引进", "人才补贴"),
    },
    "教育卫生": {
        "学位申请": ("学位不足", "积分入学", "转学申请"),
        "公共卫生": ("蚊虫鼠患", "传染病防控", "四害消杀"),
        "学校管理": ("教学管理", "学校乱收费", "教师行为"),
        "医疗服务": ("医疗服务态度", "医疗纠纷", "挂号难"),
        "社康服务": ("社康中心服务", "家庭医生签约", "疫苗接种"),
        "校外培训": ("违规培训机构", "培训退费"),
        "计生服务": ("生育登记", "生育津贴"),
        "托育服务": ("托育机构", "普惠幼儿园"),
    },
    "市场监管": {
        "食品安全": ("过期食品", "无证经营餐饮", "餐饮卫生差"),
        "消费维权": ("预付卡退费", "商家不退换货", "虚假宣传"),
        "价格监管": ("价格欺诈", "乱收费"),
        "产品质量": ("假冒伪劣", "产品质量问题"),
        "无证经营": ("无照经营", "超范围经营"),
        "计量": ("缺斤短两", "计量器具问题"),
        "药品医疗器械": ("药店违规销售", "医疗器械质量"),
        "网络交易": ("网购纠纷", "直播带货"),
    },
    "公共安全": {
        "电动车安全": ("电动车楼道充电", "飞线充电", "电池违规改装"),
        "安全生产": ("企业安全隐患", "危化品管理", "有限空间作业"),
        "应急管理": ("地质灾害隐患", "边坡隐患", "防汛隐患"),
        "特种设备": ("电梯安全隐患", "锅炉压力容器"),
        "道路安全隐患": ("路面坑洼隐患", "临边防护缺失"),
        "校园安全": ("校园周边安全", "校车安全"),
    },
    "社区管理": {
        "邻里纠纷": ("邻里噪声", "漏水纠纷", "宠物扰民"),
        "小区管理": ("小区门禁", "小区停车", "业委会"),
        "养犬管理": ("违规养犬", "犬只伤人", "流浪犬"),
        "出租屋管理": ("出租屋登记", "群租房"),
        "社区服务": ("社区工作站服务", "证明开具", "社区活动"),
        "城中村管理": ("城中村综合治理", "统租管理"),
        "人口管理": ("居住登记", "居住证办理"),
        "志愿服务": ("志愿者招募", "社区义工"),
    },
    "水务管理": {
        "排水": ("下水道堵塞", "雨水井堵塞", "污水溢流"),
        "内涝积水": ("道路积水", "小区内涝", "下穿通道积水"),
        "供水": ("停水", "水压低", "水质浑浊", "供水管爆裂"),
        "河道管理": ("河道垃圾", "河道黑臭", "河道护岸损坏"),
        "水费水表": ("水费异常", "水表故障"),
        "水库山塘": ("水库安全", "非法垂钓游泳", "山塘淤积"),
        "节约用水": ("浪费用水",),
    },
    "消防安全": {
        "消防通道": ("消防通道堵塞", "占用消防车道"),
        "火灾隐患": ("三小场所隐患", "违规住人", "仓库隐患"),
        "消防设施": ("消防栓损坏", "灭火器过期", "消防设施缺失"),
        "高层消防": ("高层楼道杂物", "安全出口锁闭"),
        "烟感报警": ("烟感误报", "烟感安装"),
    },
    "规划国土": {
        "土地管理": ("违法用地", "土地征收", "土地权属"),
        "不动产登记": ("房产证办理", "不动产登记"),
        "规划审批": ("规划公示", "规划调整", "规划许可"),
        "测绘地名": ("门牌号编制", "地名设置"),
        "地质环境": ("采石取土", "山体破坏"),
    },
    "治安管理": {
        "治安秩序": ("打架斗殴", "聚众赌博", "醉酒闹事"),
        "交通违法": ("电动车违法", "酒驾", "飙车炸街"),
        "电信诈骗": ("电话诈骗", "网络诈骗"),
        "盗窃": ("电动车被盗", "入室盗窃"),
        "非法营运": ("摩的拉客", "黑车"),
        "涉黄涉毒": ("涉黄线索", "涉毒线索"),
    },
    "民政服务": {
        "社会救助": ("低保申请", "临时救助", "特困供养"),
        "养老服务": ("养老机构", "高龄津贴", "居家养老"),
        "残疾人服务": ("残疾证办理", "残疾人补贴"),
        "婚姻登记": ("婚姻登记预约", "婚姻证明"),
        "殡葬管理": ("殡葬服务", "违规祭扫"),
    },
    "其他": {
        "其他事项": ("其他咨询", "跨区事项", "非本区事项"),
        "意见建议": ("城市建设建议", "其他建议"),
        "无效诉求": ("重复诉求", "信息不全"),
        "表扬感谢": ("表扬", "感谢信"),
    },
    "文化旅游": {
        "公园管理": ("公园设施损坏", "公园卫生", "公园开放时间"),
        "体育设施": ("体育场馆开放", "健身器材损坏"),
        "文化场馆": ("图书馆服务", "文化馆活动"),
        "旅游景区": ("景区管理", "郊野公园管理"),
        "文化市场": ("网吧管理", "娱乐场所噪声"),
    },
    "政务服务": {
        "政务咨询": ("政策咨询", "办事指引"),
        "办事效率": ("办事拖延", "多次跑腿"),
        "工作作风": ("服务态度差", "推诿扯皮"),
        "网上办事": ("系统故障", "预约困难"),
        "营商环境": ("企业服务", "惠企政策兑现"),
    },
}

# Second-level deadlines (hours) that differ from their top's: urgent matters get 24 h.
DEADLINE_OVERRIDES = {
    "内涝积水": 24, "供水": 24, "井盖管理": 24, "燃气管理": 24, "消防通道": 24,
    "路灯照明": 48, "排水": 48, "拖欠工资": 240, "学位申请": 240, "违法建设": 240,
}
URGENT_DEADLINE_H = 24

PLACE_QUALIFIERS = ("住宅小区", "城中村", "道路沿线", "商业街区", "工业园区", "学校周边",
                    "公园绿地", "河道沿线")
MATTER_QUALIFIERS = ("一般诉求", "重复诉求", "紧急诉求", "集体诉求")
# Within a parent, the i-th listed child is this much likelier than the next.
_RANK_DECAY = 0.8
_QUALIFIER_WEIGHTS = (1.0, 0.6, 0.4)


@dataclass(frozen=True)
class Leaves:
    """The fourth level of the tree as parallel arrays, one entry per leaf."""

    l1: np.ndarray        # names (object arrays)
    l2: np.ndarray
    l3: np.ndarray
    l4: np.ndarray
    top: np.ndarray       # index into TOP_NAMES
    p: np.ndarray         # probability of the leaf among all cases
    deadline_h: np.ndarray

    def __len__(self) -> int:
        return len(self.p)


TOP_NAMES = tuple(TOP_CATEGORIES)


def _qualifiers(third: str, place_bound: bool) -> tuple[str, ...]:
    """2 or 3 fourth-level qualifiers for a third-level type, fixed by a checksum."""
    crc = zlib.crc32(third.encode("utf-8"))
    n = 2 + crc % 2
    if place_bound:
        start = (crc >> 4) % len(PLACE_QUALIFIERS)
        return tuple(PLACE_QUALIFIERS[(start + 3 * i) % len(PLACE_QUALIFIERS)] for i in range(n))
    rest = MATTER_QUALIFIERS[1:]
    start = (crc >> 4) % len(rest)
    return (MATTER_QUALIFIERS[0],) + tuple(rest[(start + i) % len(rest)] for i in range(n - 1))


def _ranked(n: int) -> np.ndarray:
    w = _RANK_DECAY ** np.arange(n)
    return w / w.sum()


@lru_cache(maxsize=1)
def leaves() -> Leaves:
    """Every fourth-level class with its probability and deadline (same for every seed)."""
    rows = []
    for t, (top, (share, deadline, place_bound)) in enumerate(TOP_CATEGORIES.items()):
        seconds = CATEGORY_TREE[top]
        for second, p2 in zip(seconds, _ranked(len(seconds)), strict=True):
            thirds = seconds[second]
            hours = DEADLINE_OVERRIDES.get(second, deadline)
            for third, p3 in zip(thirds, _ranked(len(thirds)), strict=True):
                quals = _qualifiers(third, place_bound)
                w4 = np.array(_QUALIFIER_WEIGHTS[:len(quals)])
                for qual, p4 in zip(quals, w4 / w4.sum(), strict=True):
                    h = min(hours, URGENT_DEADLINE_H) if qual == "紧急诉求" else hours
                    rows.append((top, second, third, f"{third}·{qual}", t,
                                 share * p2 * p3 * p4, h))
    cols = list(zip(*rows, strict=True))
    return Leaves(*(np.array(c, dtype=object) for c in cols[:4]),
                  np.array(cols[4], dtype=np.int64), np.array(cols[5], dtype=float),
                  np.array(cols[6], dtype=np.int64))


def tree_counts() -> tuple[int, int, int, int]:
    """Number of classes at levels 1-4."""
    lv = leaves()
    return (len(TOP_CATEGORIES), len(set(zip(lv.l1, lv.l2, strict=True))),
            len(set(zip(lv.l1, lv.l2, lv.l3, strict=True))), len(lv))


# Details a 投诉 adds after naming its problem, by top category (plus generic ones for all).
DETAILS: dict[str, tuple[str, ...]] = {
    "市容环卫": ("已持续多日无人清理", "气味很大，影响周边居民生活", "严重影响市容"),
    "城市管理": ("存在安全隐患", "影响行人通行", "周边居民意见很大"),
    "环境保护": ("晚上影响休息", "气味刺鼻，影响身体健康", "周边居民深受其扰"),
    "交通运输": ("高峰期车辆排长队", "存在交通安全隐患", "出行很不方便"),
    "住房建设": ("多次联系物业无果", "存在安全隐患", "影响正常生活"),
    "劳动保障": ("涉及多名工人", "多次追讨未果", "公司拒不处理"),
    "教育卫生": ("家长十分着急", "希望得到合理解释", "影响孩子正常上学"),
    "市场监管": ("商家拒绝处理", "涉及金额较大", "要求依法查处"),
    "公共安全": ("存在较大安全隐患", "担心发生事故", "夜间尤为危险"),
    "社区管理": ("多次协调未果", "影响邻里关系", "希望社区出面协调"),
    "水务管理": ("下雨时尤其严重", "影响居民出行", "已持续较长时间"),
    "消防安全": ("一旦发生火灾后果严重", "存在重大消防隐患", "多次劝阻无效"),
    "规划国土": ("希望公开相关信息", "涉及居民切身利益", "要求依法查处"),
    "治安管理": ("居民人心惶惶", "希望加强巡逻", "要求依法处理"),
    "民政服务": ("家庭生活困难", "希望得到帮助", "材料已提交多次"),
    "其他": ("希望得到答复", "请相关部门研究", "特此反映"),
    "文化旅游": ("节假日尤为突出", "影响市民游玩", "希望加强管理"),
    "政务服务": ("多次办理未果", "希望提高办事效率", "要求给予答复"),
}
# Closing sentences by case type (the same number for each).
ASKS = {
    "投诉": ("请相关部门尽快处理。", "希望尽快安排人员到现场处理。", "请予以核实处理。",
           "恳请有关部门加强监管。"),
    "求助": ("请尽快安排人员帮助。", "恳请相关部门予以帮助。", "希望尽快得到解决。",
           "请相关部门尽快联系。"),
    "咨询": ("请予以答复。", "请告知具体办理方式。", "希望得到明确答复。", "请相关部门解答。"),
    "建议": ("请相关部门研究采纳。", "希望予以考虑。", "供相关部门参考。", "望采纳。"),
}
# Per case type: how the title and the description are put together around the place and
# the third-level type: (title prefix, title suffix, text before the address,
# text between the address and the type, text after the type).
CASE_TYPE_TEXT = {
    "投诉": ("反映", "问题", "", "存在", "问题，"),
    "求助": ("求助：", "", "", "", "，急需帮助，"),
    "咨询": ("咨询", "相关事宜", "咨询", "附近", "相关政策及办理流程，"),
    "建议": ("关于", "的建议", "建议加强", "周边", "方面的管理，"),
}

# -- handling units -----------------------------------------------------------------------------
# District-level bodies that take cases of each top category (first is the main one).
DISTRICT_UNITS: dict[str, tuple[str, ...]] = {
    "市容环卫": ("区城市管理和综合执法局", "区环境卫生管理中心"),
    "城市管理": ("区城市管理和综合执法局", "区住房和建设局", "深圳供电局坪山供电局",
                 "中国电信坪山分公司", "中国移动坪山分公司", "中国联通坪山分公司"),
    "环境保护": ("市生态环境局坪山管理局", "区环境监测站"),
    "交通运输": ("市交通运输局坪山管理局", "市公安局交通警察支队坪山大队",
                 "深圳巴士集团坪山分公司", "深圳市地铁集团运营总部", "区建筑工务署"),
    "住房建设": ("区住房和建设局", "区城市更新和土地整备局", "区建筑工务署",
                 "深圳市燃气集团坪山分公司", "区住房保障中心"),
    "劳动保障": ("区人力资源局", "区劳动人事争议仲裁院", "区医疗保障局", "区总工会",
                 "区社会保险管理中心"),
    "教育卫生": ("区教育局", "区卫生健康局", "区疾病预防控制中心", "区人民医院",
                 "区中医院", "区妇幼保健院"),
    "市场监管": ("市市场监督管理局坪山监管局", "区消费者委员会"),
    "公共安全": ("区应急管理局", "区安全生产监督管理中心", "区工业和信息化局"),
    "社区管理": ("区民政局", "区委政法委", "区住房租赁管理服务中心"),
    "水务管理": ("区水务局", "深圳市水务集团坪山分公司", "区河湖管理中心"),
    "消防安全": ("区消防救援大队", "区应急管理局"),
    "规划国土": ("市规划和自然资源局坪山管理局", "市不动产登记中心坪山登记所",
                 "区城市更新和土地整备局"),
    "治安管理": ("市公安局坪山分局",),
    "民政服务": ("区民政局", "区残疾人联合会", "区退役军人事务局", "区婚姻登记处"),
    "其他": ("区政府办公室", "区信访局", "区发展和改革局", "区科技创新局", "区财政局",
             "区司法局", "区统计局", "区国有资产监督管理局", "区投资推广服务中心"),
    "文化旅游": ("区文化广电旅游体育局", "区图书馆", "区公园管理中心", "马峦山郊野公园管理处"),
    "政务服务": ("区政务服务和数据管理局", "区行政服务大厅", "区企业服务中心"),
}
# Street-level departments ("{街道}{部门}") by top category.
STREET_DEPTS: dict[str, str] = {
    "市容环卫": "城市管理和综合执法队", "城市管理": "城市管理和综合执法队",
    "环境保护": "城建环保办公室", "交通运输": "综合治理办公室", "住房建设": "城建环保办公室",
    "劳动保障": "公共服务办公室", "教育卫生": "公共服务办公室", "市场监管": "市场监督管理所",
    "公共安全": "应急管理办公室", "社区管理": "社区建设办公室", "水务管理": "城建环保办公室",
    "消防安全": "应急管理办公室", "规划国土": "规划土地监察队", "治安管理": "派出所",
    "民政服务": "公共服务办公室", "其他": "党政综合办公室", "文化旅游": "公共服务办公室",
    "政务服务": "党政综合办公室",
}

# -- facilities -------------------------------------------------------------------------------
# kind -> (id prefix, per km², per community, per street, fixed). Counts for 166 km² and
# ~550k people: ~1,250 垃圾投放点, ~630 公交站, ~40 图书馆, ~40 社康中心, ~265 公厕, ~60
# 党群服务中心/站, ~160 学校 and 幼儿园, one 派出所 per street, ~120 公园 (坪山 calls itself
# a 公园城市).
FACILITY_KINDS: dict[str, tuple[str, float, float, float, int]] = {
    "垃圾投放点": ("LJ", 7.5, 0.0, 0.0, 0),
    "公交站": ("GJ", 3.8, 0.0, 0.0, 0),
    "图书馆": ("TS", 0.06, 1.0, 1.0, 1),
    "卫生院": ("WS", 0.0, 1.6, 0.0, 0),
    "公共卫生间": ("GC", 1.6, 0.0, 0.0, 0),
    "社区服务中心": ("FW", 0.0, 2.4, 0.0, 0),
    "学校": ("XX", 0.95, 0.0, 0.0, 0),
    "派出所": ("PC", 0.0, 0.0, 1.0, 0),
    "公园": ("GY", 0.72, 0.0, 0.0, 0),
}

# -- IoT devices -------------------------------------------------------------------------------
# kind -> (id prefix, per km²): ~2,300 路灯, ~1,300 井盖, ~3,000 烟感 (城中村出租屋), ~120
# 水位 points, ~1,800 cameras for 166 km².
DEVICE_KINDS: dict[str, tuple[str, float]] = {
    "智能路灯": ("LD", 14.0),
    "井盖传感器": ("JG", 8.0),
    "烟感": ("YG", 18.0),
    "水位传感器": ("SW", 0.7),
    "视频监控": ("SP", 11.0),
}
DEVICE_STATUS_SHARES = {"online": 0.93, "offline": 0.055, "alarm": 0.015}
WATER_METRIC = "水位"            # readings of 水位传感器, metres above the road surface
WATER_ALARM_M = 0.30             # level at which a sensor raises an alarm
WATER_CLEAR_M = 0.20             # ... and clears it again

# -- names of people and places ----------------------------------------------------------------
SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱",
            "胡", "郭", "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "邓",
            "冯", "曾", "彭", "萧", "蔡", "潘", "田", "董", "袁", "叶", "钟", "曹")
# Two-character stems for made-up roads, estates and villages (Hakka-flavoured, as in 坪山).
PLACE_STEMS = (
    "龙勤", "东纵", "金牛", "宝山", "翠景", "锦绣", "丹梓", "青松", "聚龙", "汇通", "兰竹", "振环",
    "同富", "福新", "荣田", "启航", "育才", "创景", "新横", "环城", "行政", "金田", "秀沙", "丹沙",
    "宝梓", "飞西", "锦龙", "翠湖", "碧沙", "龙兴", "星辉", "燕子", "梓横", "卢屋", "吉康", "金辉",
    "新城", "德政", "沿河", "站前", "文祥", "东晟", "凤凰", "裕安", "桃源", "荔景", "竹园", "榕树",
    "兴华", "盛平", "朝阳", "横岭", "三洋", "麻雀", "长隆", "大万", "深汕", "坪葵", "中山", "锦田",
    "光祖", "金碧", "红花", "马峦", "石陂", "油麻", "老坑", "新乔", "乌石", "岭背", "沙背", "井水",
    "太阳", "鹏茜", "比亚", "聚福", "宏发", "和兴", "昌盛", "福民", "安居", "乐园", "紫薇", "银湖",
    "梅林", "丰田", "松子", "竹林", "青云", "禾田", "牛角", "荷坳", "碧岭", "高岭", "新屋", "上洋",
    "下洋", "旭日", "瑞景", "富康",
)
ROAD_SUFFIXES = (("路", 0.5), ("大道", 0.08), ("街", 0.12), ("一路", 0.06), ("二路", 0.05),
                 ("北路", 0.05), ("南路", 0.05), ("东路", 0.05), ("西路", 0.04))
ESTATE_SUFFIXES = ("花园", "苑", "华府", "雅居", "家园", "名苑", "公馆", "新村", "小区", "山庄")
VILLAGE_SUFFIXES = ("村", "围", "新村", "老屋村", "屋")
PARK_SUFFIXES = ("公园", "社区公园", "口袋公园", "湿地公园")
SCHOOL_KINDS = (("小学", 0.35), ("中学", 0.15), ("实验学校", 0.08), ("幼儿园", 0.42))

# -- load mappings ------------------------------------------------------------------------------
_TS = '"%Y-%m-%d %H:%M:%S"'
_STATUS_MAP = ", ".join(f"{k}: {v}" for k, v in STATUS_MAP.items())


def mappings() -> dict[str, str]:
    """The YAML mappings (``etl.mapping`` format) of the four CSVs the generators write."""
    return {
        "facilities": _FACILITIES, "iot": _IOT, "iot-events": _IOT_EVENTS,
        "cases": _CASES,
    }


_FACILITIES = """\
# Public facilities of the demo city (democity/facilities.py).
kind: facilities
crs: wgs84
fields:
  id: id
  kind: kind
  name: name
  address: address
geometry: {x: lon, y: lat}
"""

_IOT = f"""\
# IoT devices of the demo city (democity/iot.py); status is online, offline or alarm.
kind: iot
crs: wgs84
timezone: Asia/Shanghai
fields:
  id: id
  kind: kind
  name: name
  status: status
  last_seen: {{column: last_seen, format: {_TS}}}
geometry: {{x: lon, y: lat}}
"""

_IOT_EVENTS = f"""\
# Status changes and readings of the demo city's IoT devices (democity/iot.py).
kind: iot-events
timezone: Asia/Shanghai
fields:
  device_id: device_id
  ts: {{column: ts, format: {_TS}}}
  event_type: event_type
  status: status
  metric: metric
  value: value
"""

_CASES = f"""\
# 坪山区 民生诉求 export of the demo city (democity/cases.py). Rows without coordinates
# are placed by their community code.
kind: cases
crs: wgs84
timezone: Asia/Shanghai
fields:
  id: 工单编号
  channel: 渠道
  case_type: 诉求类型
  category_1: 一级分类
  category_2: 二级分类
  category_3: 三级分类
  category_4: 四级分类
  title: 标题
  description: 诉求内容
  address: 地址
  reported_at: {{column: 上报时间, format: {_TS}}}
  accepted_at: {{column: 受理时间, format: {_TS}}}
  dispatched_at: {{column: 分拨时间, format: {_TS}}}
  handled_at: {{column: 处置时间, format: {_TS}}}
  feedback_at: {{column: 反馈时间, format: {_TS}}}
  closed_at: {{column: 办结时间, format: {_TS}}}
  evaluated_at: {{column: 评价时间, format: {_TS}}}
  deadline: {{column: 办理时限, format: {_TS}}}
  handling_unit: 承办单位
  handler: 处置人
  status: {{column: 办理状态, map: {{{_STATUS_MAP}}}}}
  satisfaction: 满意度
  resolved_level: {{column: 解决层级, map: {{区: 1, 街道: 2, 社区: 3, 网格: 4}}}}
  reporter_name: 姓名
  reporter_phone: 电话
geometry: {{x: 经度, y: 纬度}}
place: {{code: 社区编码, level: 3}}
"""
