// The map: an SVG drawing of the demo area, no tiles and no internet.
//
// Latitude and longitude are projected equirectangularly (longitude scaled
// by the cosine of the middle latitude, so a kilometre is as long east as
// north) into a fixed viewBox. A light grid stands for streets, a few real
// landmarks sit at their real coordinates, and markers (restaurant,
// destination, courier) move smoothly with a CSS transition.

import { h } from './dom.js';

const W = 800;
const H = 560;

// Around the six demo restaurants in Berlin.
export const DEMO_AREA = { south: 52.474, north: 52.548, west: 13.365, east: 13.470 };

// Real places, for orientation.
const LANDMARKS = [
  { name: 'Alexanderplatz', lat: 52.5219, lng: 13.4132 },
  { name: 'Brandenburger Tor', lat: 52.5163, lng: 13.3777 },
  { name: 'Kottbusser Tor', lat: 52.4991, lng: 13.4181 },
  { name: 'Ostkreuz', lat: 52.5031, lng: 13.4690 },
  { name: 'Mauerpark', lat: 52.5434, lng: 13.4024 },
];
const PARKS = [
  { name: 'Tempelhofer Feld', south: 52.4680, north: 52.4820, west: 13.3920, east: 13.4180 },
  { name: 'Volkspark Friedrichshain', south: 52.5250, north: 52.5310, west: 13.4250, east: 13.4410 },
  { name: 'Görlitzer Park', south: 52.4950, north: 52.4985, west: 13.4320, east: 13.4420 },
];

const svg = (tag, attrs = {}, ...children) => h(tag, { ...attrs, svg: true }, ...children);

export class FeastMap {
  /**
   * @param {object} opts  `label` (accessible name), `onPick({lat, lng})`
   *   to let a click choose a place.
   */
  constructor({ label = 'Map', onPick = null } = {}) {
    this.markers = new Map();
    this.bounds = { ...DEMO_AREA };
    this.onPick = onPick;
    this.el = svg('svg', {
      class: `map${onPick ? ' pickable' : ''}`,
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': label,
      preserveAspectRatio: 'xMidYMid meet',
    });
    this.base = svg('g', { class: 'base' });
    this.routeLine = svg('polyline', { class: 'route', points: '' });
    this.layer = svg('g', { class: 'markers' });
    // The courier rides above the places it passes.
    this.top = svg('g', { class: 'markers top' });
    this.el.append(this.base, this.routeLine, this.layer, this.top);
    if (onPick) this.el.addEventListener('click', (e) => this.pick(e));
    this.fit();
  }

  /** Recomputes the projection for `this.bounds` and redraws everything. */
  fit() {
    const b = this.bounds;
    const midLat = ((b.north + b.south) / 2) * (Math.PI / 180);
    this.kx = Math.cos(midLat);
    const spanX = (b.east - b.west) * this.kx;
    const spanY = b.north - b.south;
    this.scale = Math.min(W / spanX, H / spanY);
    this.ox = (W - spanX * this.scale) / 2;
    this.oy = (H - spanY * this.scale) / 2;
    this.drawBase();
    for (const m of this.markers.values()) this.place(m, false);
    this.drawRoute();
  }

  project({ lat, lng }) {
    return [
      this.ox + (lng - this.bounds.west) * this.kx * this.scale,
      this.oy + (this.bounds.north - lat) * this.scale,
    ];
  }

  unproject(x, y) {
    return {
      lat: this.bounds.north - (y - this.oy) / this.scale,
      lng: this.bounds.west + (x - this.ox) / (this.kx * this.scale),
    };
  }

  drawBase() {
    const b = this.bounds;
    const parts = [svg('rect', { class: 'land', x: 0, y: 0, width: W, height: H })];
    for (const p of PARKS) {
      const [x1, y1] = this.project({ lat: p.north, lng: p.west });
      const [x2, y2] = this.project({ lat: p.south, lng: p.east });
      parts.push(svg('rect', { class: 'park', x: x1, y: y1, width: x2 - x1, height: y2 - y1, rx: 6 }));
      parts.push(svg('text', { class: 'park-label', x: (x1 + x2) / 2, y: (y1 + y2) / 2 + 4 }, p.name));
    }
    // Streets: a fine grid every ~250 m, main roads every ~1 km.
    const step = 0.0025;
    for (let lat = Math.ceil(b.south / step) * step; lat <= b.north; lat += step) {
      const [, y] = this.project({ lat, lng: b.west });
      const main = Math.round(lat / step) % 4 === 0;
      parts.push(svg('line', { class: main ? 'road' : 'street', x1: 0, x2: W, y1: y, y2: y }));
    }
    const stepX = step / this.kx;
    for (let lng = Math.ceil(b.west / stepX) * stepX; lng <= b.east; lng += stepX) {
      const [x] = this.project({ lat: b.north, lng });
      const main = Math.round(lng / stepX) % 4 === 0;
      parts.push(svg('line', { class: main ? 'road' : 'street', y1: 0, y2: H, x1: x, x2: x }));
    }
    for (const l of LANDMARKS) {
      const [x, y] = this.project(l);
      parts.push(svg('circle', { class: 'landmark', cx: x, cy: y, r: 3 }));
      parts.push(svg('text', { class: 'landmark-label', x: x + 6, y: y - 4 }, l.name));
    }
    // A scale bar: one kilometre.
    const km = (1 / 111.32) * this.scale;
    parts.push(svg('line', { class: 'scale', x1: 16, x2: 16 + km, y1: H - 16, y2: H - 16 }));
    parts.push(svg('text', { class: 'scale-label', x: 16, y: H - 22 }, '1 km'));
    this.base.replaceChildren(...parts);
  }

  /** Adds or moves a marker; `kind` is restaurant, home, courier or pick. */
  set(key, location, { kind = key, label = '' } = {}) {
    if (!location || !Number.isFinite(location.lat) || !Number.isFinite(location.lng)) {
      this.remove(key);
      return;
    }
    let m = this.markers.get(key);
    if (!m) {
      const g = svg('g', { class: `marker ${kind}`, 'data-marker': key });
      g.append(
        svg('circle', { r: kind === 'courier' ? 9 : 11 }),
        svg('text', { class: 'glyph', y: 4 }, { restaurant: 'R', home: 'H', courier: 'C', pick: '+' }[kind] || '•'),
        svg('text', { class: 'marker-label', x: 14, y: 4 }, label),
      );
      m = { key, g, location };
      this.markers.set(key, m);
      (kind === 'courier' ? this.top : this.layer).append(g);
      this.place(m, false);
    }
    m.location = location;
    m.g.querySelector('.marker-label').textContent = label;
    m.g.dataset.lat = location.lat.toFixed(5);
    m.g.dataset.lng = location.lng.toFixed(5);
    if (!this.contains(location)) this.grow(location);
    // Only the courier glides; a picked or fixed place jumps where it is.
    else this.place(m, kind === 'courier');
    this.drawRoute();
  }

  remove(key) {
    const m = this.markers.get(key);
    if (m) {
      m.g.remove();
      this.markers.delete(key);
      this.drawRoute();
    }
  }

  place(m, animate) {
    const [x, y] = this.project(m.location);
    m.g.style.transition = animate ? '' : 'none';
    m.g.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px)`;
  }

  /** The dashed path the food takes: courier → restaurant → home. */
  route(keys) {
    this.routeKeys = keys;
    this.drawRoute();
  }

  drawRoute() {
    const pts = (this.routeKeys || [])
      .map((k) => this.markers.get(k))
      .filter(Boolean)
      .map((m) => this.project(m.location).map((v) => v.toFixed(1)).join(','));
    this.routeLine.setAttribute('points', pts.length > 1 ? pts.join(' ') : '');
  }

  contains({ lat, lng }) {
    const b = this.bounds;
    return lat > b.south && lat < b.north && lng > b.west && lng < b.east;
  }

  /** Widens the view to show a place outside it (with a margin). */
  grow({ lat, lng }) {
    const b = this.bounds;
    const m = 0.01;
    this.bounds = {
      south: Math.min(b.south, lat - m),
      north: Math.max(b.north, lat + m),
      west: Math.min(b.west, lng - m),
      east: Math.max(b.east, lng + m),
    };
    this.fit();
  }

  pick(event) {
    const ctm = this.el.getScreenCTM();
    if (!ctm) return;
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(ctm.inverse());
    const at = this.unproject(p.x, p.y);
    this.onPick({ lat: Number(at.lat.toFixed(5)), lng: Number(at.lng.toFixed(5)) });
  }
}


/**
 * A map on which a click picks a place, bound to latitude and longitude
 * inputs (so the place can also be typed, from the keyboard). The marker
 * `kind` shows the picked place.
 */
export function placePicker({ label, at, kind, markerLabel }) {
  const lat = h('input', { name: 'lat', type: 'number', step: 'any', value: at.lat });
  const lng = h('input', { name: 'lng', type: 'number', step: 'any', value: at.lng });
  const location = () => ({ lat: Number(lat.value), lng: Number(lng.value) });
  const show = () => map.set(kind, location(), { kind, label: markerLabel });
  const map = new FeastMap({
    label,
    onPick: (p) => {
      lat.value = p.lat;
      lng.value = p.lng;
      show();
    },
  });
  lat.addEventListener('input', show);
  lng.addEventListener('input', show);
  show();
  return { map, lat, lng, location };
}
