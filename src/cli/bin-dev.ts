/**
 * The `sparq` entry for development and the CLI tests: `node --import tsx src/cli/bin-dev.ts <command>`
 * runs the sources directly, so nothing depends on a build. `bin/sparq.js` is the same against dist/.
 */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
