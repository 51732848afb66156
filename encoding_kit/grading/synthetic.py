"""A synthetic class of tiny notebooks (no kit import: each runs in about a second), for the tests and the README picture."""

from pathlib import Path

import nbformat

PARAMS = 'QUICK = False\nDATA_DIR = None'
WRITE_RESULTS = (
    "import os, pathlib\n"
    "out = pathlib.Path(os.environ.get('KIT_RESULTS_DIR', 'results')) / 'assignment'\n"
    "out.mkdir(parents=True, exist_ok=True)\n"
    "(out / 'layer_scores.csv').write_text('model,layer,mean_r,std_r\\nbert,1,0.05,0.01\\nbert,2,0.08,0.02\\n')\n"
    "pathlib.Path('scratch.txt').write_text('a file next to the notebook: in the copy, not the student folder')\n"
    "print('mean r', 0.08, 'QUICK', QUICK)"
)
FIGURE = (
    "import os, pathlib\nfrom PIL import Image, ImageDraw\n"
    "image = Image.new('RGB', (320, 200), 'white')\nImageDraw.Draw(image).ellipse((60, 20, 260, 180), fill='teal')\n"
    "image.save(pathlib.Path(os.environ.get('KIT_RESULTS_DIR', 'results')) / 'assignment' / 'map.png')\n"
    "import matplotlib.pyplot as plt\nplt.plot([0.05, 0.08])\nplt.title('layer curve')\nplt.show()"
)


def notebook(path, *cells, parameters=PARAMS, outputs=None):
    """Write a notebook: an optional parameters cell, then ``cells`` (code); ``outputs``: {cell: stdout text}."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    for index, text in (outputs or {}).items():
        nb.cells[index].outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return Path(path)


def three_students(root):
    """alice passes, bob raises in his second code cell, carol hangs."""
    notebook(root / "alice" / "assignment.ipynb", WRITE_RESULTS, FIGURE, outputs={1: "mean r 0.08 QUICK True\n"})
    notebook(root / "bob" / "assignment.ipynb", "x = 1", "raise ValueError('planted failure')")
    notebook(root / "carol" / "assignment.ipynb", "import time\ntime.sleep(120)")
    return root


def bad_inputs(root):
    """Invalid JSON, no parameters cell, twin names in two sections, a write outside, a missing package, a crash."""
    (root / "dave").mkdir(parents=True)
    (root / "dave" / "assignment.ipynb").write_text("{ this is not json")
    notebook(root / "eve.ipynb", "print('no parameters here')", parameters=None)
    notebook(root / "section1" / "frank" / "assignment.ipynb", "print(1)")
    notebook(root / "section2" / "frank" / "assignment.ipynb", "print(2)")
    notebook(root / "gina" / "assignment.ipynb", "import pathlib\n(pathlib.Path(DATA_DIR) / 'gina.txt').write_text('x')")
    notebook(root / "harry" / "assignment.ipynb", "import a_package_nobody_installed")
    notebook(root / "ivan" / "assignment.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    return root
