"""Sample data before applying (portal/catalog/sample.py): a conditional dataset's page shows
synthetic rows in the shape of each table — the applicant judges the data without seeing any
of it. Checked from the page as served: no real value of an identifying column, no real row,
no category shared by fewer than k records, numbers inside the real range, identifiers in the
real shape, and the real row count."""

from __future__ import annotations

import random
import re

from stdnum.cn import ric

from tests.catalogs import entry, write_csv
from tests.helpers import harvest

NAME = "371502-mzj-0777"
STREETS = ["古楼街道", "柳园街道", "新区街道"]


def _id_number(rng: random.Random) -> str:
    body = f"371502{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(100, 999)}"
    return body + ric.calc_check_digit(body)


def _rows() -> list[list[str]]:
    rng = random.Random(7)
    surnames, given = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
    rows = []
    for i in range(60):
        street = STREETS[i % 3] if i < 58 else "广平乡"  # 广平乡: two records only
        rows.append(
            [
                rng.choice(surnames) + rng.choice(given) + rng.choice(given),
                _id_number(rng),
                street,
                str(rng.randint(600, 2400)),
                f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            ]
        )
    return rows


def _sample_cells(page: str) -> list[list[str]]:
    table = page.split('class="preview sample-table"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody", 1)[1]
    return [re.findall(r"<td>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_a_conditional_dataset_shows_a_synthetic_sample_with_nothing_real(portal_data, client, tmp_path):
    header = ["姓名", "身份证号", "所属街道", "月补贴金额", "发放日期"]
    rows = _rows()
    write_csv(tmp_path / "src" / "subsidy.csv", header, rows)
    harvest(
        portal_data,
        tmp_path / "src",
        [
            entry(
                "371502-MZJ-0777",
                "困难群众临时救助发放明细",
                "有条件开放",
                file="subsidy.csv",
                dept="东昌府区民政局",
                dept_code="dcf-mzj",
                开放条件="仅限社会救助研究，须签订数据使用协议",
            )
        ],
    )
    page = client.get(f"/dataset/{NAME}").get_data(as_text=True)
    assert "样例数据" in page and "不是真实数据" in page and "真实数据共 60 行" in page
    cells = _sample_cells(page)
    assert len(cells) == 8 and all(len(r) == len(header) for r in cells)

    real_values = {v for r in rows for v in (r[0], r[1])}
    for name, id_number, street, amount, day in cells:
        assert name not in real_values and id_number not in real_values  # nothing identifying is real
        assert re.fullmatch(r"\d{17}[\dX]", id_number)  # but it has the shape of one
        assert len(name) == 3
        assert street in STREETS  # categories shared by at least k records only: never 广平乡
        assert 600 <= int(amount) <= 2400
        assert re.fullmatch(r"2025-\d\d-\d\d", day)
    assert not {tuple(r) for r in cells} & {tuple(r) for r in rows}  # no real combination
    assert "广平乡" not in page.split('class="preview sample-table"', 1)[1].split("</table>", 1)[0]
    # The same version shows the same sample (reloading does not average toward the real data).
    assert _sample_cells(client.get(f"/dataset/{NAME}").get_data(as_text=True)) == cells


def test_unconditional_data_shows_its_real_preview_and_no_sample(portal_data, client):
    page = client.get("/dataset/371502-scj-0001").get_data(as_text=True)
    assert "sample-table" not in page and "聊城市鲁西大药房古楼店" in page
    conditional = client.get("/dataset/371502-scj-0002").get_data(as_text=True)
    assert "sample-table" in conditional
    assert "聊城市鲁西大药房古楼店" not in conditional  # its real values stay out (3 rows: every one rare)
