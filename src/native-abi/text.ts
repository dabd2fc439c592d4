// The shared texts (src/native-abi/table.ts) take their arguments as the C front door's printf does: each %s
// in order.

/** `template` with each %s replaced by the next argument. */
export function fill(template: string, ...args: (string | number)[]): string {
  let i = 0;
  return template.replace(/%s/g, () => String(args[i++]));
}
