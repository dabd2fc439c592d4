// `buildcfg [NAME]`: where this installation reads its site configuration from (Apptainer's buildcfg layout:
// NAME=value lines, or one value when a NAME is given).
import * as path from 'node:path';
import { type SingularityCommand, UsageError } from '../command.js';
import { configDir, configFile } from '../siteconfig.js';
import { RuntimeError } from '../../errors.js';

declare const TSRT_VERSION: string | undefined;

function variables(): Record<string, string> {
  return {
    PACKAGE_NAME: 'tsrt-singularity',
    PACKAGE_VERSION: typeof TSRT_VERSION === 'string' ? TSRT_VERSION : '0.1.0',
    BINDIR: path.dirname(process.execPath),
    SINGULARITY_CONFDIR: configDir(),
    SINGULARITY_CONF_FILE: configFile(),
    NVLIBLIST_FILE: path.join(configDir(), 'nvliblist.conf'),
    ROCMLIBLIST_FILE: path.join(configDir(), 'rocmliblist.conf'),
    // Everything runs with the user's own rights, in user namespaces; there is no setuid helper.
    SINGULARITY_SUID_INSTALL: '0',
  };
}

export const buildcfgCommand: SingularityCommand = {
  summary: 'Show where the site configuration (singularity.conf) and library lists are read from',
  usage: `singularity buildcfg [NAME]
  The site configuration is SINGULARITY_CONF_FILE (/etc/tsrt-singularity/singularity.conf); only root may use
  another one, with the global -c/--config FILE flag or $TSRT_SINGULARITY_CONFDIR.`,
  run(argv) {
    if (argv.length > 1) throw new UsageError(`accepts at most 1 arg(s), received ${argv.length}`);
    const vars = variables();
    if (argv[0] !== undefined) {
      const value = vars[argv[0]];
      if (value === undefined)
        throw new RuntimeError(`unknown build configuration variable ${JSON.stringify(argv[0])} (known: ${Object.keys(vars).join(', ')})`, {
          op: 'buildcfg',
        });
      process.stdout.write(`${value}\n`);
      return 0;
    }
    process.stdout.write(
      Object.entries(vars)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    );
    return 0;
  },
};
