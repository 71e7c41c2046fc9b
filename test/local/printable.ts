/**
 * Text from requests, events and Atlas shown on a terminal: control and format characters are
 * escaped, so a requestId holding a newline, a carriage return, an ANSI escape or a bidi override
 * cannot forge or hide lines of the live view.
 */
const HIDDEN = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

export function printable(text: string): string {
  return text.replace(HIDDEN, (c) => {
    const code = c.codePointAt(0) ?? 0;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
