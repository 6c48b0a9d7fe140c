"""Visualise explanations: heat maps over images, figure grids, time series and text.

Needs the optional `viz` extra (`pip install keras-explainable[viz]`:
matplotlib and pillow), imported only when a function here is called.
Figures are drawn with matplotlib's non-interactive Agg canvas, so nothing
here opens a window or changes pyplot's global state.
"""

from keras_explainable.plot.grid import plot_grid
from keras_explainable.plot.images import overlay
from keras_explainable.plot.series import series
from keras_explainable.plot.text import TextHTML, text
from keras_explainable.plot.word_pieces import merge_word_pieces, word_pieces

__all__ = [
    "TextHTML",
    "merge_word_pieces",
    "overlay",
    "plot_grid",
    "series",
    "text",
    "word_pieces",
]
