"""The Attention panel's two views: the model view (every head of every layer as a thumbnail, with the pattern
legend) and the head opened large (a heatmap, or lines between tokens for the heads ticked)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio import theme
from studio.state.attention_view import SUMMARIES

SUMMARY_ITEMS = {"mean": "mean of heads", "rollout": "rollout up to here"}
from studio.widgets.head_grid import HeadGrid, PatternLegend
from studio.widgets.head_view import HeadView, head_color
from studio.widgets.heatmap import AttentionHeatmap


class ModelView(QWidget):
    """Every head, layer by layer, with the summaries and the colour scale to choose."""

    def __init__(self, parent=None):
        super().__init__(parent)
        ll = QVBoxLayout(self)
        ll.setContentsMargins(0, 0, 0, 0)
        grid_title = QHBoxLayout()
        grid_title.addWidget(QLabel("<b>Model view</b> — every head, layer by layer"))
        grid_title.addStretch(1)
        self.summaries_box = QCheckBox("Summaries")
        self.summaries_box.setChecked(True)
        self.summaries_box.setToolTip(
            "Add two columns per layer: the mean of its heads, and attention rollout "
            "(what each token draws on through all layers so far)."
        )
        grid_title.addWidget(self.summaries_box)
        self.scale_combo = QComboBox()
        self.scale_combo.addItem("colours 0 to 1", "fixed")
        self.scale_combo.addItem("stretch each head", "stretch")
        self.scale_combo.setToolTip(
            "0 to 1 keeps heads and steps comparable; 'stretch' brightens each head to "
            "its own strongest weight, so faint patterns show (colours no longer compare)."
        )
        grid_title.addWidget(self.scale_combo)
        ll.addLayout(grid_title)
        self.grid = HeadGrid()
        self.grid.setToolTip(
            "Every head of every layer. The frame colour is the head's strongest pattern (see the "
            "legend); hover for the explanation, click to open a head large."
        )
        ll.addWidget(self.grid, 1)
        self.legend = PatternLegend()
        ll.addWidget(self.legend)

    def stretched(self) -> bool:
        return self.scale_combo.currentData() == "stretch"


class HeadDetail(QWidget):
    """One head (or a layer's summary) large: the layer and head to show, and the heatmap and head view tabs."""

    layerPicked = Signal(int)
    columnPicked = Signal(int)  # a head, or past the heads: mean, rollout
    changed = Signal()  # a tab or a head's lines switched: redraw

    def __init__(self, parent=None):
        super().__init__(parent)
        self.head_boxes: list[QCheckBox] = []
        rl = QVBoxLayout(self)
        rl.setContentsMargins(0, 0, 0, 0)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Layer"))
        self.layer_spin = QSpinBox()
        self.layer_spin.setToolTip("Which layer to show large (layer 0 reads the tokens first).")
        self.layer_spin.valueChanged.connect(self.layerPicked)
        pick.addWidget(self.layer_spin)
        pick.addWidget(QLabel("Show"))
        self.head_combo = QComboBox()
        self.head_combo.setToolTip("One head, the mean of the layer's heads, or attention rollout up to this layer.")
        self.head_combo.currentIndexChanged.connect(lambda i: self.columnPicked.emit(i) if i >= 0 else None)
        # Filled once a snapshot arrives; sized when first shown (empty), it cut "mean of heads" to "mean of he".
        theme.fit_to_contents(self.head_combo)
        pick.addWidget(self.head_combo)
        pick.addStretch(1)
        rl.addLayout(pick)
        self.tabs = QTabWidget()
        self.heatmap = AttentionHeatmap()
        self.tabs.addTab(self.heatmap, "Heatmap")
        self.tabs.addTab(self._build_head_view(), "Head view")
        self.tabs.currentChanged.connect(lambda *_: self.changed.emit())
        rl.addWidget(self.tabs, 1)

    def _build_head_view(self) -> QWidget:
        hv = QWidget()
        hl = QVBoxLayout(hv)
        hl.setContentsMargins(4, 4, 4, 4)
        heads_row = QHBoxLayout()
        heads_row.addWidget(QLabel("Heads:"))
        self.heads_box_row = QHBoxLayout()
        self.heads_box_row.setSpacing(6)
        heads_row.addLayout(self.heads_box_row)
        all_button = QPushButton("All")
        all_button.setToolTip("Show the lines of every head of the layer.")
        all_button.clicked.connect(lambda: self.check_heads(True))
        none_button = QPushButton("None")
        none_button.setToolTip("Hide all heads (then tick the ones to compare).")
        none_button.clicked.connect(lambda: self.check_heads(False))
        heads_row.addWidget(all_button)
        heads_row.addWidget(none_button)
        heads_row.addStretch(1)
        hl.addLayout(heads_row)
        self.head_view = HeadView()
        self.head_scroll = QScrollArea()
        self.head_scroll.setWidgetResizable(True)
        self.head_scroll.setWidget(self.head_view)
        hl.addWidget(self.head_scroll, 1)
        return hv

    def heatmap_shown(self) -> bool:
        return self.tabs.currentIndex() == 0

    def show_selection(self, layer: int, column: int) -> None:
        """Put the layer and head pickers on (layer, column) without a signal."""
        self.layer_spin.blockSignals(True)
        self.layer_spin.setValue(layer)
        self.layer_spin.blockSignals(False)
        self.head_combo.blockSignals(True)
        self.head_combo.setCurrentIndex(column)
        self.head_combo.blockSignals(False)

    def set_shape(self, n_layer: int, n_head: int, summaries: tuple[str, ...] = SUMMARIES) -> None:
        """Pickers and head boxes for a model of `n_layer` layers of `n_head` heads, with the layer's
        `summaries` after the heads (cross-attention has the mean only)."""
        if self.layer_spin.maximum() != n_layer - 1:
            self.layer_spin.blockSignals(True)
            self.layer_spin.setRange(0, max(0, n_layer - 1))
            self.layer_spin.blockSignals(False)
        items = [f"head {h}" for h in range(n_head)] + [SUMMARY_ITEMS[name] for name in summaries]
        if [self.head_combo.itemText(i) for i in range(self.head_combo.count())] != items:
            keep = self.head_combo.currentIndex()
            self.head_combo.blockSignals(True)
            self.head_combo.clear()
            self.head_combo.addItems(items)
            self.head_combo.setCurrentIndex(min(max(keep, 0), len(items) - 1))
            self.head_combo.blockSignals(False)
        if len(self.head_boxes) != n_head:
            self._make_head_boxes(n_head)

    def _make_head_boxes(self, n_head: int) -> None:
        for box in self.head_boxes:
            self.heads_box_row.removeWidget(box)
            box.deleteLater()
        self.head_boxes = []
        for h in range(n_head):
            box = QCheckBox(str(h))
            box.setChecked(True)
            box.setStyleSheet(f"QCheckBox {{ color: {head_color(h, theme.is_dark()).name()}; font-weight: 600; }}")
            box.setToolTip(f"Show the lines of head {h} (drawn in this colour).")
            box.toggled.connect(lambda *_: self.changed.emit())
            self.heads_box_row.addWidget(box)
            self.head_boxes.append(box)

    def check_heads(self, on: bool) -> None:
        for box in self.head_boxes:
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        self.changed.emit()

    def checked_heads(self) -> list[int]:
        return [h for h, box in enumerate(self.head_boxes) if box.isChecked()]
