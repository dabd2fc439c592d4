/** argv for running this program again (a compiled single executable, or node/bun with a script). */
export function selfArgv(): [string, string[]] {
  const script = process.argv[1];
  if (script && /\.(m?js|ts)$/.test(script)) return [process.execPath, [script]];
  return [process.execPath, []];
}
