// attack.js — MITRE ATT&CK tags of Sigma rules as links: tactics (all 14 Enterprise tactics with
// their TA ids) and techniques (names only for a small table of well-known ones; others show the id).

/** Enterprise tactics by Sigma tag name (underscores; Sigma also writes hyphens). */
export const TACTICS = /** @type {Record<string, {id: string, name: string}>} */ ({
  reconnaissance: { id: 'TA0043', name: 'Reconnaissance' },
  resource_development: { id: 'TA0042', name: 'Resource Development' },
  initial_access: { id: 'TA0001', name: 'Initial Access' },
  execution: { id: 'TA0002', name: 'Execution' },
  persistence: { id: 'TA0003', name: 'Persistence' },
  privilege_escalation: { id: 'TA0004', name: 'Privilege Escalation' },
  defense_evasion: { id: 'TA0005', name: 'Defense Evasion' },
  credential_access: { id: 'TA0006', name: 'Credential Access' },
  discovery: { id: 'TA0007', name: 'Discovery' },
  lateral_movement: { id: 'TA0008', name: 'Lateral Movement' },
  collection: { id: 'TA0009', name: 'Collection' },
  command_and_control: { id: 'TA0011', name: 'Command and Control' },
  exfiltration: { id: 'TA0010', name: 'Exfiltration' },
  impact: { id: 'TA0040', name: 'Impact' },
});

/** Names of some well-known techniques; an id missing here is shown without a name. */
export const TECHNIQUES = /** @type {Record<string, string>} */ ({
  T1003: 'OS Credential Dumping',
  'T1003.001': 'LSASS Memory',
  'T1003.002': 'Security Account Manager',
  'T1003.003': 'NTDS',
  'T1003.006': 'DCSync',
  T1016: 'System Network Configuration Discovery',
  T1018: 'Remote System Discovery',
  T1021: 'Remote Services',
  'T1021.001': 'Remote Desktop Protocol',
  'T1021.002': 'SMB/Windows Admin Shares',
  'T1021.006': 'Windows Remote Management',
  T1027: 'Obfuscated Files or Information',
  T1033: 'System Owner/User Discovery',
  T1036: 'Masquerading',
  T1046: 'Network Service Discovery',
  T1047: 'Windows Management Instrumentation',
  T1053: 'Scheduled Task/Job',
  'T1053.003': 'Cron',
  'T1053.005': 'Scheduled Task',
  T1055: 'Process Injection',
  T1057: 'Process Discovery',
  T1059: 'Command and Scripting Interpreter',
  'T1059.001': 'PowerShell',
  'T1059.003': 'Windows Command Shell',
  'T1059.004': 'Unix Shell',
  'T1059.005': 'Visual Basic',
  'T1059.006': 'Python',
  'T1059.007': 'JavaScript',
  T1069: 'Permission Groups Discovery',
  T1070: 'Indicator Removal',
  'T1070.001': 'Clear Windows Event Logs',
  T1071: 'Application Layer Protocol',
  'T1071.001': 'Web Protocols',
  T1078: 'Valid Accounts',
  'T1078.004': 'Cloud Accounts',
  T1082: 'System Information Discovery',
  T1083: 'File and Directory Discovery',
  T1087: 'Account Discovery',
  T1095: 'Non-Application Layer Protocol',
  T1098: 'Account Manipulation',
  T1105: 'Ingress Tool Transfer',
  T1110: 'Brute Force',
  T1112: 'Modify Registry',
  T1136: 'Create Account',
  'T1136.001': 'Local Account',
  T1140: 'Deobfuscate/Decode Files or Information',
  T1190: 'Exploit Public-Facing Application',
  T1204: 'User Execution',
  T1218: 'System Binary Proxy Execution',
  'T1218.005': 'Mshta',
  'T1218.010': 'Regsvr32',
  'T1218.011': 'Rundll32',
  T1486: 'Data Encrypted for Impact',
  T1490: 'Inhibit System Recovery',
  T1505: 'Server Software Component',
  'T1505.003': 'Web Shell',
  T1543: 'Create or Modify System Process',
  'T1543.003': 'Windows Service',
  T1547: 'Boot or Logon Autostart Execution',
  'T1547.001': 'Registry Run Keys / Startup Folder',
  T1550: 'Use Alternate Authentication Material',
  'T1550.002': 'Pass the Hash',
  T1556: 'Modify Authentication Process',
  'T1556.006': 'Multi-Factor Authentication',
  T1558: 'Steal or Forge Kerberos Tickets',
  'T1558.003': 'Kerberoasting',
  T1560: 'Archive Collected Data',
  T1562: 'Impair Defenses',
  'T1562.001': 'Disable or Modify Tools',
  'T1562.008': 'Disable or Modify Cloud Logs',
  T1566: 'Phishing',
  T1569: 'System Services',
  'T1569.002': 'Service Execution',
});

/** @typedef {{kind: 'technique' | 'tactic', id: string, text: string, url: string} | {kind: 'other', text: string}} AttackTag */

/**
 * What a rule tag is: an ATT&CK technique or tactic (with its link) or another tag.
 * @param {string} tag
 * @returns {AttackTag}
 */
export function describeTag(tag) {
  const t = tag.trim();
  const technique = /^attack\.t(\d{4})(?:\.(\d{3}))?$/i.exec(t);
  if (technique) {
    const [, main, sub] = technique;
    const id = sub ? `T${main}.${sub}` : `T${main}`;
    const name = TECHNIQUES[id];
    const url = `https://attack.mitre.org/techniques/T${main}/${sub ? sub + '/' : ''}`;
    return { kind: 'technique', id, text: name ? `${id} ${name}` : id, url };
  }
  const tactic = /^attack\.([a-z_-]+)$/i.exec(t);
  if (tactic) {
    const known = TACTICS[tactic[1].toLowerCase().replaceAll('-', '_')];
    if (known) {
      return { kind: 'tactic', id: known.id, text: known.name, url: `https://attack.mitre.org/tactics/${known.id}/` };
    }
  }
  return { kind: 'other', text: t };
}
