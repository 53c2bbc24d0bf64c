/**
 * The little XML that libvirt needs, built as text. Every attribute value and
 * text node is escaped here, so a name holding a quote or '&' stays data and
 * cannot open a new attribute or element. (Control characters cannot be
 * written in XML 1.0 even escaped; the name parsers keep them out.)
 */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

export type Attrs = Record<string, string | number>;

function openTag(name: string, attrs: Attrs): string {
  const rendered = Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeXml(String(v))}'`);
  return `<${name}${rendered.join('')}`;
}

const indent = (block: string) => block.replace(/^/gm, '  ');

/** `<name a='v'/>`, or with child elements one per line, indented the way libvirt prints them. */
export function element(name: string, attrs: Attrs, children: readonly string[] = []): string {
  if (children.length === 0) return `${openTag(name, attrs)}/>`;
  return `${openTag(name, attrs)}>\n${indent(children.join('\n'))}\n</${name}>`;
}

/** `<name a='v'>text</name>` */
export function textElement(name: string, text: string, attrs: Attrs = {}): string {
  return `${openTag(name, attrs)}>${escapeXml(text)}</${name}>`;
}
