// Just enough of man(7) for the generated pages: escaped text, fonts, sections, tagged paragraphs and
// examples. Everything that is not a request goes through text(), so no word of the tables can become one.

/** Plain text for roff: backslashes and dashes escaped, and no line starting a request (. or '). */
export function text(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map(l => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

export function bold(s: string): string {
  return `\\fB${text(s)}\\fR`;
}

export function italic(s: string): string {
  return `\\fI${text(s)}\\fR`;
}

/** The title line: NAME(SECTION), its date and source, and the manual's title. */
export function title(name: string, section: number, date: string, source: string): string {
  const manual = section === 8 ? "System Manager's Manual" : 'User Commands';
  return `.TH ${text(name.toUpperCase())} ${section} "${date}" "${text(source)}" "${manual}"`;
}

export function section(name: string): string {
  return `.SH ${name.toUpperCase()}`;
}

/** Paragraphs separated by blank lines in the source. */
export function paragraphs(s: string): string {
  return s
    .split(/\n\s*\n/)
    .map(p => `.PP\n${text(p.replace(/\s*\n\s*/g, ' ').trim())}`)
    .join('\n');
}

/** A tagged paragraph: the tag (already roff) on its own line, the body indented under it. */
export function tagged(tag: string, body: string): string {
  return `.TP\n${tag}\n${text(body)}`;
}

/** Lines kept as they are, in a fixed-width font. */
export function example(lines: string): string {
  return `.PP\n.RS 4\n.EX\n${text(lines)}\n.EE\n.RE`;
}

export function bullet(s: string): string {
  return `.IP \\(bu 2\n${text(s)}`;
}

/** A reference to another page, as .BR writes it: bold name, then the section in roman. */
export function reference(name: string, section: number, after = ''): string {
  return `.BR ${text(name)} (${section})${after}`;
}
