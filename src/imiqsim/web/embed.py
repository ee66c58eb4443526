"""A Panel component that shows a Bokeh JSON item built elsewhere, and fills it with data.

The page's own BokehJS draws the item (``Bokeh.embed.embed_item``), so nothing is fetched
besides what the server already serves, and the server only forwards text. A ``payload`` (see
:func:`imiqsim.web.figures.cascade_payload`) replaces the data of the item's named sources
``slot0``, ``slot1``, ... and ``kills`` and moves the span ``threshold``: the cascade's figures
are built once, each run only sends its numbers.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent

__all__ = ["BokehItem"]


class BokehItem(JSComponent):
    """A Bokeh layout given as :func:`bokeh.embed.json_item` JSON text, with optional data."""

    item = param.String(default=None, doc="bokeh.embed.json_item output, as JSON text")
    payload = param.String(default=None, doc="data for the item's named sources, as JSON text")

    _esm = """
function decode(b64) {
  const bin = atob(b64)
  const bytes = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i) }
  return new Float32Array(bytes.buffer)
}

export function render({ model, el }) {
  const target = document.createElement("div")
  target.className = "imiq-bokeh-item"
  el.appendChild(target)
  let doc = null
  let current = null

  function fill() {
    if (doc === null || !model.payload) { return }
    const p = JSON.parse(model.payload)
    for (let k = 0; ; k++) {
      const src = doc.get_model_by_name(`slot${k}`)
      if (src === null) { break }
      const slot = p.slots[k]
      const data = {}
      for (const col of Object.keys(src.data)) {
        data[col] = slot ? decode(slot.columns[col]) : new Float32Array(0)
      }
      src.data = data
    }
    const kills = doc.get_model_by_name("kills")
    if (kills !== null) {
      const n = kills.data.y.length
      const per = p.slots.length ? Math.round(n / (p.slots[0].share.length)) : 1
      const share = new Float64Array(n)
      const cells = new Float64Array(n)
      p.slots.forEach((slot, k) => {
        slot.share.forEach((v, m) => { share[m * per + k] = v; cells[m * per + k] = slot.cells[m] })
      })
      kills.data = {...kills.data, share, cells}
    }
    const span = doc.get_model_by_name("threshold")
    if (span !== null) { span.location = p.threshold }
    target.dataset.labels = JSON.stringify(p.labels ?? [])
  }

  async function draw() {
    if (current !== null) {
      for (const view of current.roots) { view.remove() }
      current = null
      doc = null
    }
    target.replaceChildren()
    if (model.item) {
      const item = JSON.parse(model.item)
      if (item.root_ids !== undefined) {
        // several roots of one document, in a CSS grid
        target.style.display = "grid"
        target.style.gridTemplateColumns = `repeat(${item.columns}, max-content)`
        const roots = {}
        for (const id of item.root_ids) {
          const cell = document.createElement("div")
          target.appendChild(cell)
          roots[id] = cell
        }
        const docid = "imiq-" + Math.random().toString(36).slice(2)
        const [views] = await window.Bokeh.embed.embed_items(
          {[docid]: item.doc}, [{docid, roots, root_ids: item.root_ids}]
        )
        current = views
      } else {
        current = await window.Bokeh.embed.embed_item(item, target)
      }
      doc = current.roots[0].model.document
      fill()
    }
  }
  draw()
  model.on("item", draw)
  model.on("payload", fill)
}
"""
