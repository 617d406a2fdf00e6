// Which strokes make which digit, from the strokes themselves rather than from
// touching pixels: digits written so close that their ink touches stay apart,
// and the separate strokes of one digit (a 4, a 5's flag, a 7's crossbar, a
// dot) stay together.
//
// People write a number left to right, one digit after another, and a
// digit's strokes share its columns. So two strokes (or groups of strokes)
// are one digit when their column ranges overlap by a good part of the
// narrower one's width, where a thin vertical stroke (a 1, a 4's stem)
// counts as a third of its height wide, so that a 1 does not join the digit
// whose box it overlaps by a tenth of that digit's width. Neighbouring digits
// whose boxes overlap by a tenth of a width stay apart. A stroke much smaller
// than the others (a dot, a tick) goes to the digit nearest to it.

/** A thin stroke (a 1, a stem) counts as at least this fraction of its height wide. */
const MIN_WIDTH_OF_HEIGHT = 0.3;
/** Two groups merge when their column ranges overlap by this fraction of the narrower. */
const MERGE_OVERLAP = 0.4;
/** A stroke whose box is under this fraction of the tallest stroke's height is a dot. */
const DOT = 0.15;

function boxOf(points) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  return { x0, y0, x1, y1 };
}

const union = (a, b) => ({ x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) });

/** Column range of a box, widened about its centre to at least half its height. */
function columns(box) {
  const width = Math.max(box.x1 - box.x0, MIN_WIDTH_OF_HEIGHT * (box.y1 - box.y0));
  const centre = (box.x0 + box.x1) / 2;
  return [centre - width / 2, centre + width / 2];
}

function sameDigit(a, b) {
  const [a0, a1] = columns(a);
  const [b0, b1] = columns(b);
  const overlap = Math.min(a1, b1) - Math.max(a0, b0);
  return overlap >= MERGE_OVERLAP * Math.min(a1 - a0, b1 - b0);
}

/**
 * Groups strokes into digits.
 * @param {{points: number[][]}[]} strokes  in drawing order; points are [x, y]
 * @returns {{strokes: number[], box: {x0: number, y0: number, x1: number, y1: number}}[]}
 *   the digits left to right: indices into `strokes` and the box of their points
 */
export function groupStrokes(strokes) {
  const items = strokes.map((s, i) => ({ i, box: boxOf(s.points) })).filter((s) => s.box.x0 <= s.box.x1);
  if (items.length === 0) return [];
  const tallest = Math.max(...items.map((s) => Math.max(s.box.y1 - s.box.y0, s.box.x1 - s.box.x0)));
  const isDot = (s) => Math.max(s.box.y1 - s.box.y0, s.box.x1 - s.box.x0) < DOT * tallest;
  const dots = items.filter(isDot);
  let groups = items.filter((s) => !isDot(s)).map((s) => ({ strokes: [s.i], box: s.box }));
  if (groups.length === 0) groups = dots.splice(0).map((s) => ({ strokes: [s.i], box: s.box }));
  // Merge until no two groups share their columns.
  for (let merged = true; merged; ) {
    merged = false;
    for (let a = 0; a < groups.length && !merged; a++) {
      for (let b = a + 1; b < groups.length && !merged; b++) {
        if (sameDigit(groups[a].box, groups[b].box)) {
          groups[a] = { strokes: [...groups[a].strokes, ...groups[b].strokes], box: union(groups[a].box, groups[b].box) };
          groups.splice(b, 1);
          merged = true;
        }
      }
    }
  }
  for (const dot of dots) {
    const cx = (dot.box.x0 + dot.box.x1) / 2;
    const distance = (g) => Math.max(0, g.box.x0 - cx, cx - g.box.x1);
    const nearest = groups.reduce((best, g) => (distance(g) < distance(best) ? g : best));
    nearest.strokes.push(dot.i);
    nearest.box = union(nearest.box, dot.box);
  }
  for (const g of groups) g.strokes.sort((p, q) => p - q);
  return groups.sort((p, q) => p.box.x0 + p.box.x1 - (q.box.x0 + q.box.x1));
}
