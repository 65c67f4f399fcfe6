"""Where the fan-out progress bar goes: a terminal, a Jupyter notebook (widget or text), or nowhere."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from duckdb_openai import progress
from duckdb_openai.http.requester import RequestStats
from duckdb_openai.progress import FanOutProgress, choose_display


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class KernelShell:
    """What IPython's get_ipython() returns inside a Jupyter kernel: a shell with a kernel."""

    kernel = object()


class TerminalShell:
    """IPython in a terminal: no kernel."""


@pytest.mark.parametrize(
    ("mode", "stream", "shell", "widgets", "expected"),
    [
        ("auto", io.StringIO(), None, True, None),  # a pipe or a log: nothing
        ("auto", Terminal(), None, False, "text"),
        ("auto", io.StringIO(), KernelShell(), True, "notebook"),  # Jupyter with ipywidgets: the widget
        ("auto", io.StringIO(), KernelShell(), False, "text"),  # Jupyter without: the text bar
        ("auto", io.StringIO(), TerminalShell(), True, None),  # IPython in a pipe: as any pipe
        ("auto", Terminal(), TerminalShell(), True, "text"),
        ("on", io.StringIO(), None, True, "text"),
        ("on", io.StringIO(), KernelShell(), True, "notebook"),
        ("off", Terminal(), KernelShell(), True, None),
        ("off", Terminal(), None, False, None),
    ],
)
def test_choose_display(mode: Any, stream: Any, shell: Any, widgets: bool, expected: str | None) -> None:
    assert choose_display(mode, stream=stream, shell=shell, widgets=widgets) == expected


def test_a_kernel_without_a_usable_widget_gets_the_text_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ipywidgets said to be there, but tqdm cannot build its widget: the text bar, not an ImportError."""
    monkeypatch.setattr(progress, "_kernel_shell", KernelShell)
    monkeypatch.setattr(progress, "_has_widgets", lambda: True)
    monkeypatch.setattr("tqdm.notebook.IProgress", None)
    with FanOutProgress(3, RequestStats(), "on", units=("runs", "steps")) as bar:
        for _ in range(3):
            bar.advance(10)
    err = capsys.readouterr().err
    assert "3/3" in err and "steps=30" in err


def test_a_real_kernel_is_recognised(tmp_path: Path) -> None:
    """In a Jupyter kernel, 'auto' draws a bar although stderr is no terminal."""
    import nbformat
    from nbclient import NotebookClient

    code = (
        "import importlib.util\n"
        "from duckdb_openai.progress import choose_display\n"
        "print(choose_display('auto'), choose_display('auto', widgets=True),\n"
        "      importlib.util.find_spec('ipywidgets') is not None)"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(notebook, timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown, forced, widgets = notebook.cells[0].outputs[0]["text"].split()
    assert (shown, forced) == ("notebook" if widgets == "True" else "text", "notebook")
