/** Structural checks for kickstart and debconf preseed files (no external tools at runtime). */

/** Kickstart commands (pykickstart, RHEL 8/9 handlers). */
export const KICKSTART_COMMANDS: ReadonlySet<string> = new Set([
  'authselect', 'auth', 'authconfig', 'autopart', 'autostep', 'bootloader', 'btrfs', 'cdrom', 'clearpart', 'cmdline',
  'device', 'deviceprobe', 'dmraid', 'driverdisk', 'eula', 'fcoe', 'firewall', 'firstboot', 'graphical', 'group',
  'halt', 'harddrive', 'hmc', 'ignoredisk', 'install', 'iscsi', 'iscsiname', 'keyboard', 'lang', 'liveimg', 'logging',
  'logvol', 'mediacheck', 'method', 'module', 'monitor', 'mount', 'multipath', 'network', 'nfs', 'nvdimm',
  'ostreecontainer', 'ostreesetup', 'part', 'partition', 'poweroff', 'raid', 'realm', 'reboot', 'repo', 'reqpart',
  'rescue', 'rhsm', 'rootpw', 'selinux', 'services', 'shutdown', 'skipx', 'snapshot', 'sshkey', 'sshpw', 'syspurpose',
  'text', 'timesource', 'timezone', 'updates', 'upgrade', 'url', 'user', 'vnc', 'volgroup', 'xconfig', 'zerombr',
  'zfcp', 'zipl',
]);
const KS_SECTIONS = new Set(['%pre', '%pre-install', '%post', '%packages', '%onerror', '%traceback', '%addon', '%anaconda']);
const KS_DIRECTIVES = new Set(['%include', '%ksappend']);

export function checkKickstart(text: string): string[] {
  const problems: string[] = [];
  let open: { name: string; line: number } | null = null;
  let commands = 0;
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (open) {
      if (line === '%end') open = null;
      else if (line.startsWith('%') && (KS_SECTIONS.has(line.split(/\s+/)[0]!) || KS_DIRECTIVES.has(line.split(/\s+/)[0]!)))
        problems.push(`line ${n}: "${line.split(/\s+/)[0]}" inside ${open.name} (opened on line ${open.line}) before its %end`);
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    const word = line.split(/\s+/)[0]!;
    if (word === '%end') problems.push(`line ${n}: %end without an open section`);
    else if (KS_SECTIONS.has(word)) open = { name: word, line: n };
    else if (KS_DIRECTIVES.has(word)) {
      if (line.split(/\s+/).length < 2) problems.push(`line ${n}: ${word} needs a location`);
    } else if (word.startsWith('%')) problems.push(`line ${n}: unknown section "${word}"`);
    else if (!KICKSTART_COMMANDS.has(word)) problems.push(`line ${n}: unknown kickstart command "${word}"`);
    else commands++;
  });
  if (open) problems.push(`${(open as { name: string }).name} opened on line ${(open as { line: number }).line} has no %end`);
  if (commands === 0) problems.push('no kickstart commands');
  return problems;
}

const PRESEED_TYPES = new Set(['string', 'boolean', 'select', 'multiselect', 'note', 'text', 'password', 'error', 'title']);

/** debconf preseed: `owner question type [value]`, backslash-continued lines joined first. */
export function checkPreseed(text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  let entries = 0;
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!.replace(/\r$/, '');
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!.replace(/\r$/, '');
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const m = /^(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(t);
    if (!m) {
      problems.push(`line ${start}: expected "owner question type value"`);
      continue;
    }
    const [, owner, question, type, value = ''] = m;
    if (!/^[a-z0-9][a-z0-9+.-]*$/.test(owner!)) problems.push(`line ${start}: bad owner "${owner}"`);
    if (!question!.includes('/')) problems.push(`line ${start}: question "${question}" has no "/"`);
    if (!PRESEED_TYPES.has(type!)) problems.push(`line ${start}: unknown type "${type}"`);
    if (type === 'boolean' && !['true', 'false'].includes(value.trim())) problems.push(`line ${start}: boolean ${question} must be true or false`);
    entries++;
  }
  if (entries === 0) problems.push('no preseed entries');
  return problems;
}
