/**
 * A table whose first column is a tree: each row under its parent, drawn with box-drawing
 * characters, as `pgrepl list` and `pgrepl topology` draw who streams from whom:
 *
 *   Member   Address
 *   n1       10.0.0.1:5432
 *   ├─ n2    10.0.0.2:5432
 *   │  └─ n4 10.0.0.4:5432
 *   └─ n3    10.0.0.3:5432
 *
 * Roots and children keep the order the rows are given in. A row whose parent is not a row is a
 * root; rows in a loop of parents (no root above them) are drawn as roots too, so no row is lost.
 */
export interface TreeRow {
  name: string;
  parent: string | null;
  /** The other columns. */
  cells: string[];
}

export interface TreeTable {
  /** The first column's title, then the others'. */
  head: string[];
  rows: TreeRow[];
  /** Indexes (in head) of the columns aligned right. */
  rightAligned?: number[];
}

/** The lines of the table (no trailing newline), trailing spaces trimmed. */
export function treeLines({ head, rows, rightAligned = [] }: TreeTable): string[] {
  const names = new Set(rows.map((r) => r.name));
  const children = new Map<string, TreeRow[]>();
  const roots: TreeRow[] = [];
  for (const r of rows) {
    if (r.parent !== null && r.parent !== r.name && names.has(r.parent)) children.set(r.parent, [...(children.get(r.parent) ?? []), r]);
    else roots.push(r);
  }
  const drawn: string[][] = [];
  const visited = new Set<string>();
  const walk = (r: TreeRow, label: string, indent: string): void => {
    if (visited.has(r.name)) return;
    visited.add(r.name);
    drawn.push([label + r.name, ...r.cells]);
    const kids = (children.get(r.name) ?? []).filter((k) => !visited.has(k.name));
    kids.forEach((k, i) => {
      const last = i === kids.length - 1;
      walk(k, indent + (last ? '└─ ' : '├─ '), indent + (last ? '   ' : '│  '));
    });
  };
  for (const r of roots) walk(r, '', '');
  for (const r of rows) walk(r, '', '');
  const widths = head.map((h, i) => Math.max(h.length, ...drawn.map((cells) => (cells[i] ?? '').length)));
  const right = new Set(rightAligned);
  const line = (cells: string[]): string =>
    head.map((_, i) => (right.has(i) ? (cells[i] ?? '').padStart(widths[i]!) : (cells[i] ?? '').padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...drawn.map(line)];
}
