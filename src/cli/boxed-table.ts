/**
 * The boxed table calicoctl's `ipam` and `node status` commands print (Go's
 * olekukonko/tablewriter defaults): `+---+` borders, headers centred, cells that look like
 * numbers right-aligned, everything else left-aligned, one space of padding each side.
 */

/** tablewriter right-aligns a cell that is a decimal number or a percentage. */
const NUMERIC = /^-?\d+(\.\d+)?%?$/;

function centre(text: string, width: number): string {
  const gap = width - text.length;
  const left = Math.floor(gap / 2);
  return " ".repeat(left) + text + " ".repeat(gap - left);
}

export function renderBoxed(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const border = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  const out = [border, line(headers.map((h, i) => centre(h, widths[i]!))), border];
  for (const r of rows) {
    out.push(
      line(
        widths.map((w, i) => {
          const cell = r[i] ?? "";
          return NUMERIC.test(cell) ? cell.padStart(w) : cell.padEnd(w);
        }),
      ),
    );
  }
  out.push(border);
  return out.join("\n");
}
