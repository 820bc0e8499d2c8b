/** Progress of `npm run bench`, on stderr: stdout carries only the report. */
export function say(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
