/**
 * A jest reporter added by jest.config.js when the browser specs were left out: it prints the
 * notice once, at the end of the run, just above the summary (jest always reports that last).
 */
'use strict';

class ChromiumNoticeReporter {
  constructor(_globalConfig, options) {
    this.notice = options.notice;
  }

  onRunComplete() {
    const loud = process.stderr.isTTY ? `\x1b[1;33m${this.notice}\x1b[0m` : this.notice;
    process.stderr.write(`\n${loud}\n`);
  }
}

module.exports = ChromiumNoticeReporter;
