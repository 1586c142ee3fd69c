"""Aid bodies that read well in a 360 px panel: task lists, tables, code and video links as the
renderer emits them (server/render.py), still sanitized."""

from __future__ import annotations

from server.render import Renderer

CHECKLIST = """Before you ship the release:

- [ ] Tag the commit
- [x] Run the **smoke** tests
- [X] Tell the on-call
- Not a task
"""


def test_task_lists_become_tasks_without_literal_brackets() -> None:
    """Checklist aids showed a literal `[ ]` before each step; they are task items now, ticked or
    not, for the panel to turn into checkboxes."""
    html = Renderer().to_html(CHECKLIST)
    assert "[ ]" not in html and "[x]" not in html and "[X]" not in html
    assert '<ul class="task-list">' in html
    assert '<li class="task">Tag the commit</li>' in html
    assert '<li class="task done">Run the <strong>smoke</strong> tests</li>' in html
    assert '<li class="task done">Tell the on-call</li>' in html
    assert "<li>Not a task</li>" in html


def test_brackets_elsewhere_are_left_alone() -> None:
    html = Renderer().to_html("[ ] not in a list\n\n- [y] not a task\n- [ ]no space\n")
    assert "class=" not in html
    assert "[ ] not in a list" in html and "[y] not a task" in html


def test_ordered_task_lists() -> None:
    html = Renderer().to_html("1. [ ] first\n2. [x] second\n")
    assert '<ol class="task-list">' in html
    assert '<li class="task">first</li>' in html and '<li class="task done">second</li>' in html


def test_tables_are_wrapped_to_scroll() -> None:
    """Tables in the 360 px panel broke words mid-word; they come in a scrollable wrapper."""
    html = Renderer().to_html("| Time | Topic |\n|---|---|\n| 0:40 | Reimbursement |\n")
    assert html.startswith('<div class="table-wrap"><table>')
    assert html.rstrip().endswith("</table>\n</div>")


def test_author_classes_do_not_survive() -> None:
    """Only the renderer's own markers pass as classes; an author's class names are dropped."""
    html = Renderer().to_html(
        '<div class="table-wrap overlay"><p class="x">a</p></div>\n\n'
        '<ul class="task-list evil"><li class="task hidden">b</li></ul>\n\n'
        '<span class="task">c</span>'
    )
    assert 'class="table-wrap"' in html
    assert 'class="task-list"' in html and 'class="task"' in html
    for bad in ("overlay", "evil", "hidden", 'class="x"', "<span"):
        assert bad not in html


def test_code_blocks_keep_their_lines() -> None:
    html = Renderer().to_html("```\nSELECT *\n  FROM expenses WHERE total > 100\n```\n")
    assert "<pre><code>SELECT *\n  FROM expenses WHERE total &gt; 100\n</code></pre>" in html


def test_video_links_keep_their_start_time() -> None:
    """A link into a video at a time (`#t=`) keeps its fragment, so it opens at that moment."""
    html = Renderer().to_html("[Discounts](https://video.example.com/quote#t=1:55)")
    assert 'href="https://video.example.com/quote#t=1:55"' in html


def test_task_markers_cannot_smuggle_markup() -> None:
    html = Renderer().to_html('- [ ] <img src=x onerror="alert(1)"> <script>alert(1)</script>\n')
    assert "onerror" not in html and "<script" not in html
    assert '<li class="task">' in html
