"""Exports of the pages, headless: the flow as a GIF, the table as CSV, the figures as standalone
HTML, and the CLI's --export DIR. (In a browser: test_export_browser.py.)"""
import csv
import io
import json
import re

from PIL import Image

from odeviz.cli import main
from odeviz.experiments.table1 import MODEL_LABELS, MODELS
from odeviz.views import ClassifierPage, CNFPage, ContinuityPage, Table1Page
from odeviz.views.animation import SIDE, CAPTION_HEIGHT
from odeviz.views.export import animation_gif, shown_models, standalone_html, table_csv


def _gif_frames(data: bytes) -> tuple[tuple[int, int], int]:
    image = Image.open(io.BytesIO(data))
    return image.size, image.n_frames


def test_flows_animate_as_gifs(make_experiment):
    from odeviz.experiments import ClassifierExperiment, CNFExperiment

    for page_class, experiment_class, stem in ((ClassifierPage, ClassifierExperiment, "classifier-flow"),
                                                (CNFPage, CNFExperiment, "cnf-density-transform")):
        page = page_class(experiment=make_experiment(experiment_class)).ready()
        name, data = animation_gif(page.stream.snapshot)
        size, frames = _gif_frames(data)
        assert name == f"{stem}.gif" and size == (SIDE, SIDE + CAPTION_HEIGHT) and frames > 1
        assert table_csv(page.stream.snapshot) is None


def test_table1_is_a_csv_of_the_four_models(make_experiment):
    from odeviz.experiments import Table1Experiment

    page = Table1Page(experiment=make_experiment(Table1Experiment)).ready()
    name, text = table_csv(page.stream.snapshot)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert name == "table1.csv"
    assert [row["model"] for row in rows] == [MODEL_LABELS[key] for key in MODELS]
    assert [row["paper_test_error_percent"] for row in rows] == ["1.6", "0.41", "0.47", "0.42"]
    assert all(int(row["params"]) > 0 for row in rows)
    assert animation_gif(page.stream.snapshot) is None


def test_html_holds_every_figure_and_bokeh_itself(make_experiment):
    page = ContinuityPage(experiment=make_experiment()).ready()
    html = standalone_html(page)
    figures = shown_models(page)
    assert len(figures) >= 3
    for figure in figures:
        assert f'"id":"{figure.id}"' in html.replace(" ", "")
    assert "Bokeh.embed" in html and not re.search(r"<(script|link)[^>]+(src|href)=", html)  # inline: no network


def test_cli_export_writes_html_and_gif(tmp_path, capsys):
    folder = tmp_path / "made" / "here"
    assert main(["train", "classifier", "--iters", "3", "--samples", "64", "--export", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["exported"]) == sorted(str(folder / name) for name in ("odeviz-classifier.html", "classifier-flow.gif"))
    assert "Bokeh.embed" in (folder / "odeviz-classifier.html").read_text()
    assert _gif_frames((folder / "classifier-flow.gif").read_bytes())[1] > 1


def test_cli_export_refuses_a_file_before_training(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    assert main(["train", "continuity", "--iters", "3", "--export", str(a_file)]) == 2
    assert capsys.readouterr().err.strip() == f"odeviz: error: --export: {str(a_file)!r} is a file; give a folder"
