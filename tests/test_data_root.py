"""Server-side paths typed in a page: only inside the data folder the person serving offers
(``odeviz serve --data-root DIR``), and a refusal that says nothing about the files outside it."""
from __future__ import annotations

import os

import panel as pn
import pytest
from test_table1 import write_mnist

from odeviz.experiments import Table1Experiment
from odeviz.runtime import DATA_ROOT_VARIABLE, data_root, resolve_in_root

OUTSIDE = "is outside the data folder the server offers"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "root" / "mnist").mkdir(parents=True)
    (tmp_path / "rootless").mkdir()  # shares the root's name as a prefix
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "id_rsa").write_text("key")
    return tmp_path / "root"


def test_paths_inside_the_root_resolve_to_real_paths(root):
    assert resolve_in_root(root, "mnist") == root / "mnist"
    assert resolve_in_root(root, "  mnist/  ") == root / "mnist"
    assert resolve_in_root(root, str(root / "mnist")) == root / "mnist"  # absolute, inside
    assert resolve_in_root(root, "mnist/../mnist/./") == root / "mnist"
    assert resolve_in_root(root, "") == root
    assert resolve_in_root(root, "not/yet/there") == root / "not" / "yet" / "there"  # loading says what is missing
    assert resolve_in_root(str(root), "mnist").is_absolute()


@pytest.mark.parametrize("path", ["..", "../secret", "mnist/../../secret/id_rsa", "/etc/passwd", "/", "../rootless",
                                  "{tmp}/rootless", "{tmp}/secret/id_rsa", "/nonexistent/anything", "../../../../.."])
def test_paths_outside_the_root_are_refused(root, path):
    with pytest.raises(ValueError, match=OUTSIDE):
        resolve_in_root(root, path.format(tmp=root.parent))


def test_the_refusal_is_the_same_whether_or_not_the_path_exists(root):
    messages = []
    for path in ("../secret/id_rsa", "../secret/no_such_file", "../no_such_dir/x"):
        with pytest.raises(ValueError) as error:
            resolve_in_root(root, path)
        messages.append(str(error.value).replace(path, "PATH"))
    assert len(set(messages)) == 1 and "exist" not in messages[0]


def test_tilde_is_a_name_not_the_home_folder(root):
    assert resolve_in_root(root, "~") == root / "~"
    assert resolve_in_root(root, "~/mnist") == root / "~" / "mnist"
    with pytest.raises(ValueError, match=OUTSIDE):
        resolve_in_root(root, os.path.expanduser("~"))


def test_symlinks_are_followed_before_the_check(root):
    (root / "escape").symlink_to(root.parent / "secret")
    (root / "alias").symlink_to(root / "mnist")
    (root / "loop").symlink_to(root / "loop")
    assert resolve_in_root(root, "alias") == root / "mnist"
    for path in ("escape", "escape/id_rsa", "loop"):
        with pytest.raises(ValueError, match=OUTSIDE):
            resolve_in_root(root, path)


def test_a_root_that_is_a_symlink_still_holds_its_own_files(root):
    link = root.parent / "link"
    link.symlink_to(root)
    assert resolve_in_root(link, "mnist") == root / "mnist"
    with pytest.raises(ValueError, match=OUTSIDE):
        resolve_in_root(link, "../secret")


def test_a_nul_character_is_refused_with_a_message(root):
    with pytest.raises(ValueError, match="NUL"):
        resolve_in_root(root, "mnist\0")


def test_the_root_comes_from_the_environment(root, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_VARIABLE, raising=False)
    assert data_root() is None
    monkeypatch.setenv(DATA_ROOT_VARIABLE, str(root / "mnist" / ".."))
    assert data_root() == root


# ---- the Table 1 page's MNIST box ---------------------------------------------------------
def mnist_box(page) -> pn.widgets.TextInput:
    pn.panel(page).get_root()
    return next(w for w in page._layout.select(pn.widgets.TextInput) if w.label.startswith("MNIST"))


@pytest.fixture
def table1_page():
    from odeviz.views import Table1Page

    made = []

    def make():
        made.append(Table1Page(experiment=Table1Experiment(models=["mlp"], epochs=1, batch_size=128)))
        return made[-1]

    yield make
    for page in made:
        page.stream.stop()
        page.experiment.close()


def test_without_a_data_root_the_page_takes_no_server_paths(table1_page, monkeypatch, root):
    monkeypatch.delenv(DATA_ROOT_VARIABLE, raising=False)
    write_mnist(root / "mnist")
    page = table1_page()
    box = mnist_box(page)
    assert box.disabled and box.placeholder == "start odeviz serve --data-root DIR to offer MNIST"
    box.value = str(root / "mnist")  # a forged message: the box is disabled in the browser
    assert page.experiment.mnist_dir is None and box.value == ""


def test_with_a_data_root_the_page_opens_mnist_inside_it_only(table1_page, monkeypatch, root):
    monkeypatch.setenv(DATA_ROOT_VARIABLE, str(root))
    write_mnist(root / "mnist")
    write_mnist(root.parent / "secret")
    page = table1_page()
    box = mnist_box(page)
    assert not box.disabled
    box.value = "../secret"
    assert page.experiment.mnist_dir is None and box.value == ""
    box.value = "mnist"
    assert page.experiment.mnist_dir == str(root / "mnist")
    page.experiment.trainer.wait_idle()  # the table restarts on MNIST
    assert page.experiment.trainer.mailbox.latest().dataset == "MNIST"
