"""The README's Python examples run as written and print what the text says."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:  # later blocks reuse names from earlier ones, like a reader would
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    text = out.getvalue()
    rg, kl, A = namespace["rg"], namespace["kl"], namespace["A"]
    assert float(rg.dual_gap(namespace["uniform"], A, kl, 10.0)) > 1e-3  # uniform is not the SNE
    assert "random agent: MBR regret" in text and "MBR regret after 500 rounds" in text
    res = namespace["res"]
    assert float(res.dual_gap) <= 1e-9
