// psparse parses PowerShell scripts with the tree-sitter PowerShell grammar
// (tree-sitter-powershell, run by web-tree-sitter) and reports every syntax
// error as file:line:col with the offending text.
//
// Usage: node psparse.mjs FILE...
// Exit: 0 every file parsed cleanly; 1 a file has syntax errors; 2 the
// check itself could not run (no files, an unreadable file, the grammar
// failed to load), so that a broken tool never reads as "errors found".
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';

const require = createRequire(import.meta.url);

// Run the grammar's wasm (about 1 MB) with V8's baseline compiler only:
// the optimizing tier recompiles the whole module in the background and
// held every run here for about 10 s of CPU, while parsing our scripts
// takes well under a second without it. It must be set before any wasm
// is compiled.
setFlagsFromString('--liftoff-only');

// A span of source to report: from index start, past any leading blank
// space (an ERROR can begin at the end of the line before its text), to
// end. pos is line:col of its first character (columns count UTF-16 code
// units, like the parser's indices); text is its first line, cut short.
function span(src, start, end) {
  while (start < end && /\s/.test(src[start])) start++;
  const before = src.slice(0, start);
  const pos = `${before.split('\n').length}:${start - before.lastIndexOf('\n')}`;
  let text = src.slice(start, end).split(/\r?\n/)[0];
  if (text.length > 60) text = text.slice(0, 60) + '...';
  return { pos, text: JSON.stringify(text) };
}

const at = (node) => `${node.startPosition.row + 1}:${node.startPosition.column + 1}`;

// innermost returns the first ERROR or MISSING node inside node, descending
// into nested ERROR nodes: the point where the parser gave up, which is
// nearer the mistake than the start of the statement around it.
function innermost(node) {
  for (const child of node.children) {
    if (child.isMissing) return child;
    if (child.isError) return innermost(child) || child;
    if (child.hasError) {
      const found = innermost(child);
      if (found) return found;
    }
  }
  return null;
}

const openers = { '}': '{', ')': '(', ']': '[' };

// opener names, for a missing closing delimiter, the opening one it would
// close (a sibling before it): an unclosed brace is found only at the end
// of the file, so that end alone would not say which block is open.
function opener(src, missing) {
  const want = openers[missing.type];
  if (!want) return '';
  for (let n = missing.previousSibling; n !== null; n = n.previousSibling) {
    if (n.type === want) {
      const lineStart = src.lastIndexOf('\n', n.startIndex - 1) + 1;
      const stmt = src.slice(lineStart).split(/\r?\n/)[0].trim();
      return ` to close the ${JSON.stringify(want)} at ${at(n)} (line: ${JSON.stringify(stmt.length > 60 ? stmt.slice(0, 60) + '...' : stmt)})`;
    }
  }
  return '';
}

// problems returns the syntax errors in a tree, one line each: every
// MISSING node (a token the parser inserted to recover, such as a '}') and
// every outermost ERROR node (text it could not parse). An ERROR is placed
// where the parser gave up inside it, and names the statement it broke
// (its first text that is not a comment).
function problems(src, root) {
  const out = [];
  const walk = (node) => {
    if (node.isMissing) {
      out.push(`${at(node)}: missing ${JSON.stringify(node.type)}${opener(src, node)}`);
      return;
    }
    if (node.isError) {
      const first = node.children.find((c) => c.type !== 'comment') || node;
      const stmt = span(src, first.startIndex, node.endIndex);
      const inner = innermost(node);
      if (inner === null) {
        out.push(`${stmt.pos}: syntax error at ${stmt.text}`);
      } else if (inner.isMissing) {
        out.push(`${at(inner)}: missing ${JSON.stringify(inner.type)}${opener(src, inner)} in ${stmt.text} (from ${stmt.pos})`);
      } else {
        const e = span(src, inner.startIndex, inner.endIndex);
        out.push(`${e.pos}: syntax error at ${e.text} in ${stmt.text} (from ${stmt.pos})`);
      }
      return;
    }
    if (!node.hasError) return;
    for (const child of node.children) walk(child);
  };
  walk(root);
  if (out.length === 0 && root.hasError) {
    // hasError without a node found above would be a walker bug: never
    // let it pass.
    out.push('1:1: the parser reports an error it did not place');
  }
  return out;
}

async function main(files) {
  if (files.length === 0) {
    console.error('usage: node psparse.mjs FILE... (no files given)');
    return 2;
  }
  const { Parser, Language } = await import('web-tree-sitter');
  await Parser.init();
  const wasm = require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
  const parser = new Parser();
  parser.setLanguage(await Language.load(wasm));

  let bad = 0;
  for (const file of files) {
    // A UTF-8 byte-order mark marks the encoding; it is not script text.
    const src = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
    const tree = parser.parse(src);
    const found = problems(src, tree.rootNode);
    tree.delete();
    for (const p of found) console.log(`${file}:${p}`);
    if (found.length > 0) bad++;
  }
  if (bad > 0) {
    console.log(`psparse: ${bad} of ${files.length} PowerShell scripts have syntax errors (fix the first in each file: those after it can be where the parser recovered)`);
    return 1;
  }
  console.log(`psparse: ${files.length} PowerShell scripts parse cleanly`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`psparse: ${err.stack || err}`); process.exitCode = 2; },
);
