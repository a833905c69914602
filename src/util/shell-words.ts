/**
 * Splits a line into words as a POSIX shell does, for variables the official entrypoint expands
 * with `eval` (POSTGRES_INITDB_ARGS): blanks separate words, '...' is literal, "..." is literal
 * but for \" \\ \$ \` and line continuations, a backslash outside quotes takes the next character
 * as it is, and # starting a word comments out the rest of the line. What eval would run or
 * expand instead of keep ($, `, ;, &, |, <, >, (, ) outside single quotes) is refused: pgrepl
 * never runs the value as a command.
 */
export class ShellWordsError extends Error {}

const BLANK = /[ \t\n]/;
const EXPANDS = new Set(['$', '`']);
const OPERATORS = new Set([';', '&', '|', '<', '>', '(', ')']);

export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  const refuse = (c: string, where: string): never => {
    throw new ShellWordsError(`${c} ${where} would be expanded or run by a shell, which pgrepl does not do: quote it with '...' or write the value out`);
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (BLANK.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === '#' && !inWord) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new ShellWordsError("a ' is not closed");
      word += text.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      for (i++; ; i++) {
        if (i >= text.length) throw new ShellWordsError('a " is not closed');
        const d = text[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < text.length && '$`"\\\n'.includes(text[i + 1]!)) {
          if (text[i + 1] !== '\n') word += text[i + 1];
          i++;
        } else if (EXPANDS.has(d)) refuse(d, 'inside "..."');
        else word += d;
      }
    } else if (c === '\\') {
      if (i + 1 >= text.length) break; // a trailing backslash continues onto nothing
      if (text[i + 1] !== '\n') {
        word += text[i + 1];
        inWord = true;
      }
      i++;
    } else if (EXPANDS.has(c) || OPERATORS.has(c)) {
      refuse(c, 'outside quotes');
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}
