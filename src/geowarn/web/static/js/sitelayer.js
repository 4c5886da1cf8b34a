// A canvas layer for hundreds of thousands of sites: coordinates are projected to Web Mercator once
// (typed arrays); each redraw walks the arrays and fills small squares, one colour at a time. The
// canvas is larger than the view (PAD on each side) and moves with the map pane while panning, so a
// pan costs nothing until it ends; then one redraw (tens of milliseconds at 300,000 points). The
// margin is small (PAD of the view on each side) because the pixel buffer is written whole each time.
const PAD = 0.2;

export const SiteLayer = L.Layer.extend({
  initialize(data, colourOf, palette) {
    this.setData(data, colourOf, palette);
    this.visible = null;
  },

  setData(data, colourOf, palette) {
    const n = data.count;
    this.data = data;
    this.n = n;
    this.mx = new Float64Array(n);
    this.my = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const lat = Math.max(-85, Math.min(85, data.lat[i]));
      this.mx[i] = 0.5 + data.lon[i] / 360;
      this.my[i] = 0.5 - Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360)) / (2 * Math.PI);
    }
    this.setColours(colourOf, palette);
  },

  setColours(colourOf, palette) {
    this.palette = palette;
    this.colour = new Uint8Array(this.n);
    for (let i = 0; i < this.n; i++) this.colour[i] = colourOf(i);
    if (this._map) this.redraw();
  },

  setFilter(visible) {
    this.visible = visible; // Uint8Array mask or null (all)
    if (this._map) this.redraw();
  },

  onAdd(map) {
    this.canvas = L.DomUtil.create("canvas", "leaflet-zoom-hide gw-sites");
    this.canvas.style.position = "absolute";
    this.canvas.style.pointerEvents = "none";
    map.getPane("overlayPane").appendChild(this.canvas);
    map.on("moveend zoomend resize viewreset", this.redraw, this);
    this.redraw();
  },

  onRemove(map) {
    map.off("moveend zoomend resize viewreset", this.redraw, this);
    this.canvas.remove();
  },

  redraw() {
    const map = this._map;
    if (!map) return;
    const t0 = performance.now();
    const size = map.getSize();
    const padX = Math.round(size.x * PAD), padY = Math.round(size.y * PAD);
    const w = size.x + 2 * padX, h = size.y + 2 * padY;
    const topLeft = map.containerPointToLayerPoint([-padX, -padY]);
    L.DomUtil.setPosition(this.canvas, topLeft);
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== w * dpr || this.canvas.height !== h * dpr) {
      this.canvas.width = w * dpr;
      this.canvas.height = h * dpr;
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const zoom = map.getZoom();
    const scale = 256 * Math.pow(2, zoom);
    const origin = map.getPixelOrigin();
    const ox = origin.x + topLeft.x, oy = origin.y + topLeft.y;
    const r = zoom < 9 ? 1 : zoom < 12 ? 2 : zoom < 14 ? 3 : 5;
    const d = 2 * r;
    const { mx, my, colour, visible, n } = this;
    // Visible indexes first (one pass), then one fill per colour.
    const idx = this._idx && this._idx.length >= n ? this._idx : (this._idx = new Uint32Array(n));
    const px = this._px && this._px.length >= n ? this._px : (this._px = new Float32Array(n));
    const py = this._py && this._py.length >= n ? this._py : (this._py = new Float32Array(n));
    let m = 0;
    for (let i = 0; i < n; i++) {
      if (visible && !visible[i]) continue;
      const x = mx[i] * scale - ox, y = my[i] * scale - oy;
      if (x < -d || y < -d || x > w + d || y > h + d) continue;
      idx[m] = i; px[m] = x; py[m] = y; m++;
    }
    const round = m < 20000 && r >= 3;
    if (round) {
      for (let c = 0; c < this.palette.length; c++) {
        ctx.fillStyle = this.palette[c];
        ctx.beginPath();
        for (let k = 0; k < m; k++) {
          if (colour[idx[k]] !== c) continue;
          ctx.moveTo(px[k] + r, py[k]);
          ctx.arc(px[k], py[k], r, 0, 2 * Math.PI);
        }
        ctx.fill();
        ctx.strokeStyle = "rgba(255,255,255,.9)";
        ctx.lineWidth = 1;
        ctx.stroke();
      }
    } else {
      // Many points: squares written straight into the pixels (one putImageData), far faster than
      // a fillRect per point on a software-rendered canvas.
      const W = this.canvas.width, H = this.canvas.height;
      if (!this._img || this._img.width !== W || this._img.height !== H) this._img = ctx.createImageData(W, H);
      const img = this._img;
      const buf = new Uint32Array(img.data.buffer);
      buf.fill(0);
      const rgba = this._rgba();
      const side = Math.max(1, Math.round(d * dpr));
      const half = side >> 1;
      for (let k = 0; k < m; k++) {
        const value = rgba[colour[idx[k]]];
        const x0 = Math.round(px[k] * dpr) - half, y0 = Math.round(py[k] * dpr) - half;
        const xa = Math.max(0, x0), xb = Math.min(W, x0 + side), ya = Math.max(0, y0), yb = Math.min(H, y0 + side);
        for (let y = ya; y < yb; y++) {
          const row = y * W;
          for (let x = xa; x < xb; x++) buf[row + x] = value;
        }
      }
      ctx.putImageData(img, 0, 0);
    }
    this.drawn = m;
    this.lastDrawMs = performance.now() - t0;
    this.fire("drawn", { count: m, ms: this.lastDrawMs });
  },

  // The palette as packed RGBA words of the canvas's byte order (little-endian: 0xAABBGGRR).
  _rgba() {
    return this.palette.map((hex) => {
      const v = parseInt(hex.slice(1), 16);
      return ((255 << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;
    });
  },

  // The visible site nearest to a container point, within `tol` pixels, or -1.
  nearest(containerPoint, tol = 8) {
    const map = this._map;
    const scale = 256 * Math.pow(2, map.getZoom());
    const p = map.containerPointToLayerPoint(containerPoint).add(map.getPixelOrigin());
    let best = -1, bestD = tol * tol;
    for (let i = 0; i < this.n; i++) {
      if (this.visible && !this.visible[i]) continue;
      const dx = this.mx[i] * scale - p.x, dy = this.my[i] * scale - p.y;
      const dd = dx * dx + dy * dy;
      if (dd <= bestD) { bestD = dd; best = i; }
    }
    return best;
  },
});
