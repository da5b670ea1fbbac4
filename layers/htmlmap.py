"""A standalone HTML map made with folium that works offline: Leaflet is inlined from the
copy shipped in ``layers/assets/leaflet`` and folium's CDN assets are left out."""

from __future__ import annotations

import re
from pathlib import Path

import folium
import geopandas as gpd
from folium.template import Template

from layers.catalog import LayerSpec

ASSETS = Path(__file__).parent / "assets" / "leaflet"
TOOLTIP_FIELDS = ("name", "code", "kind", "category_1", "status", "grid_name", "community_name",
                  "street_name")


class OfflineMap(folium.Map):
    """A folium map that loads nothing from the network."""

    default_js: list = []
    default_css: list = []


class TextTooltip(folium.GeoJsonTooltip):
    """folium's tooltip writes the values into ``innerHTML``, so a name holding markup runs
    as script when the file is opened; this one builds the table node by node and sets
    every label and value as text."""

    _template = Template("""
    {% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindTooltip(function (layer) {
        const table = L.DomUtil.create('table');
        const fields = {{ this.fields | tojson }};
        const labels = {{ this.aliases | tojson }};
        fields.forEach(function (field, i) {
            const row = L.DomUtil.create('tr', '', table);
            const value = layer.feature.properties[field];
            L.DomUtil.create('th', '', row).textContent = labels[i];
            L.DomUtil.create('td', '', row).textContent = value == null ? '' : String(value);
        });
        return table;
    }, {{ this.tooltip_options | tojavascript }});
    {% endmacro %}
    """)


def _leaflet_css() -> str:
    """Leaflet's styles without comments (one cites a web page)."""
    return re.sub(r"/\*.*?\*/", "", (ASSETS / "leaflet.css").read_text(), flags=re.S)


def _leaflet_js() -> str:
    """Leaflet's code, minus the one web link it carries (its attribution prefix)."""
    return (ASSETS / "leaflet.js").read_text().replace("https://leafletjs.com", "#")


def standalone_map(frame: gpd.GeoDataFrame, layer: LayerSpec) -> str:
    """The HTML text of a map of ``frame`` with every asset inline."""
    bounds = frame.total_bounds if len(frame) else (73.5, 18.0, 135.0, 53.5)
    fmap = OfflineMap(tiles=None, control_scale=True, attribution_control=False,
                      prefer_canvas=True)
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    head = fmap.get_root().header
    head.add_child(folium.Element(f"<style>{_leaflet_css()}</style>"))
    head.add_child(folium.Element(f"<script>{_leaflet_js()}</script>"))
    if len(frame):
        fields = [f for f in TOOLTIP_FIELDS if f in frame.columns][:4]
        folium.GeoJson(
            frame.to_json(drop_id=True), name=layer.title["zh"],
            marker=folium.CircleMarker(radius=4, weight=1, fill=True, fill_opacity=0.8),
            style_function=lambda _: {"color": "#1f5fa8", "weight": 1, "fillOpacity": 0.3},
            tooltip=TextTooltip(fields=fields) if fields else None,
        ).add_to(fmap)
    return fmap.get_root().render()
