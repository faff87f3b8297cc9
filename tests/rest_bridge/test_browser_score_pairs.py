"""The score page's optional pair column in real headless Chromium: it is sent as ``pair_field``, every row is
scored with its pair, and a row without one is shown as not scored. The browser, the bridge and the page
fixtures are test_browser.py's."""

from __future__ import annotations

import csv

import pytest
import requests

from tests.rest_bridge.test_browser import browser, bridge, visit  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

ROWS = [("1", "the food was good but the service was bad", "service"),
        ("2", "the food was good but the service was bad", "food"),
        ("3", "i love this film", "the night"), ("4", "terrible food", ""), ("5", "okay day", "service")]


def test_a_pair_column_typed_on_the_score_page_scores_each_row_with_its_pair(bridge, visit, tmp_path):  # noqa: F811
    source = tmp_path / "aspects.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "aspect"])
        writer.writerows(ROWS)
    seen = visit(f"{bridge.url}/score")
    page = seen.page
    page.fill("#pair-field", "aspect")
    page.set_input_files("#file", str(source))
    page.click("#upload")
    page.wait_for_selector("#job-state:text-is('Done')")
    assert page.inner_text("#progress-text") == "5 of 5 rows · 1 could not be scored"
    assert [e.inner_text() for e in page.query_selector_all("#rows tbody .row-pair")] == \
        [f" · {pair}" for _, _, pair in ROWS if pair]
    assert len(page.query_selector_all("#rows tbody tr.row-error")) == 1

    with page.expect_download() as download:
        page.click("#download-csv")
    with open(download.value.path(), newline="") as handle:
        scored = list(csv.DictReader(handle))
    assert [r["aspect"] for r in scored] == [pair for _, _, pair in ROWS]
    for (_, text, pair), row in zip(ROWS, scored):
        if not pair:
            assert row["predicted_label"] == "" and "'aspect'" in row["error"]
            continue
        expected = requests.post(f"{bridge.url}/predict", json={"text": text, "text_pair": pair}, timeout=30).json()
        assert row["predicted_label"] == expected["label"]
        for label, score in expected["scores"].items():
            assert float(row[f"score_{label}"]) == pytest.approx(score, abs=1e-5)
    seen.assert_stayed_on(bridge.url)


def test_a_pair_column_the_file_lacks_is_explained(bridge, visit, tmp_path):  # noqa: F811
    source = tmp_path / "reviews.csv"
    source.write_text("id,text\n1,good film\n")
    page = visit(f"{bridge.url}/score").page
    page.fill("#pair-field", "aspect")
    page.set_input_files("#file", str(source))
    page.click("#upload")
    page.wait_for_selector("#error:not([hidden])")
    assert "no 'aspect' column" in page.inner_text("#error")
    assert page.is_hidden("#job")
