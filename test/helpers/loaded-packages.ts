/**
 * Preloaded with `node --require` into a child process: when it exits, writes the npm packages it
 * loaded (from require.cache) to stderr as one line `LOADED-PACKAGES ["a","@b/c",…]`.
 */
export {};

process.on('exit', () => {
  const names = new Set<string>();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(file);
    if (m) names.add(m[1]!.replace('\\', '/'));
  }
  process.stderr.write(`\nLOADED-PACKAGES ${JSON.stringify([...names].sort())}\n`);
});
