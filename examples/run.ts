/** What every example does around its main(): start when run directly, stop cleanly on a signal. */

/** Runs `main` when `mod` is the file node was started with; a start-up error is printed without its stack. */
export function runWhenMain(mod: NodeModule, main: () => Promise<void>): void {
  if (require.main !== mod) return;
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}

/** On Ctrl-C or SIGTERM: `close` (servers, then the database), then exit whether or not it succeeded. */
export function closeOnSignal(close: () => Promise<unknown>): void {
  const stop = () => {
    close().catch(() => undefined).finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
