//! The event stream: benign events of the configured mix, with an attack story every
//! `attack_every` events, positioned and timed by their index. The same settings give the
//! same stream, record for record.

use std::collections::{HashSet, VecDeque};

use serde::Deserialize;

use crate::attacks::{self, Story, Target, Truth, NEW_PARENT_LEARNING_HOURS};
use crate::rng::Rng;
use crate::sources::{self, Slot, Source};
use crate::world::World;

/// Relative weights of the sources in the benign mix (0 leaves a source out).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Sysmon on Windows.
    #[serde(default)]
    pub sysmon: u32,
    /// Windows Security.
    #[serde(default)]
    pub security: u32,
    /// PowerShell script blocks.
    #[serde(default)]
    pub powershell: u32,
    /// Sysmon for Linux.
    #[serde(default)]
    pub linux_sysmon: u32,
    /// Linux audit.
    #[serde(default)]
    pub auditd: u32,
    /// Linux syslog.
    #[serde(default)]
    pub syslog: u32,
    /// Firewall CEF.
    #[serde(default)]
    pub cef: u32,
    /// PAN-OS traffic.
    #[serde(default)]
    pub paloalto: u32,
    /// AWS CloudTrail.
    #[serde(default)]
    pub cloudtrail: u32,
    /// Okta.
    #[serde(default)]
    pub okta: u32,
}

impl Mix {
    /// The weight of `source`.
    pub fn weight(&self, source: Source) -> u32 {
        match source {
            Source::Sysmon => self.sysmon,
            Source::Security => self.security,
            Source::PowerShell => self.powershell,
            Source::LinuxSysmon => self.linux_sysmon,
            Source::Auditd => self.auditd,
            Source::Syslog => self.syslog,
            Source::Cef => self.cef,
            Source::PanOs => self.paloalto,
            Source::CloudTrail => self.cloudtrail,
            Source::Okta => self.okta,
        }
    }
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            sysmon: 35,
            security: 15,
            powershell: 5,
            linux_sysmon: 5,
            auditd: 8,
            syslog: 10,
            cef: 6,
            paloalto: 8,
            cloudtrail: 5,
            okta: 3,
        }
    }
}

/// One record of the stream.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its source.
    pub source: Source,
    /// Its text, without the final newline (auditd records span lines).
    pub text: String,
    /// Its stream position.
    pub index: u64,
    /// What the attack story this record completes must raise.
    pub truth: Option<Truth>,
}

/// The generator: an iterator of records, endless.
pub struct Stream {
    world: World,
    rng: Rng,
    mix: Vec<(Source, u32)>,
    total_weight: u32,
    attack_every: u64,
    index: u64,
    stories: u64,
    rotation: Vec<Story>,
    next_story: usize,
    pending: VecDeque<Record>,
    /// When each Windows host first ran a process (stream time), for the baseline story.
    first_process: Vec<Option<i64>>,
    used_for_baseline: HashSet<u32>,
}

impl Stream {
    /// A stream over `world` with `mix`, seeded by `seed`, with a story every
    /// `attack_every` events (0: none).
    pub fn new(world: World, mix: &Mix, seed: u64, attack_every: u64) -> Self {
        let mix: Vec<(Source, u32)> = Source::ALL
            .iter()
            .map(|s| (*s, mix.weight(*s)))
            .filter(|(_, w)| *w > 0)
            .collect();
        let total_weight = mix.iter().map(|(_, w)| w).sum();
        let hosts = world.windows_hosts as usize;
        Self {
            world,
            rng: Rng::new(seed),
            mix,
            total_weight,
            attack_every,
            index: 0,
            stories: 0,
            rotation: attacks::rotation(),
            next_story: 0,
            pending: VecDeque::new(),
            first_process: vec![None; hosts],
            used_for_baseline: HashSet::new(),
        }
    }

    fn slot(&self, index: u64) -> Slot {
        Slot {
            index,
            time_ms: self.world.time_of(index),
        }
    }

    fn benign(&mut self) -> Record {
        let mut pick = self.rng.below(u64::from(self.total_weight.max(1))) as u32;
        let mut source = Source::Sysmon;
        for (s, w) in &self.mix {
            if pick < *w {
                source = *s;
                break;
            }
            pick -= w;
        }
        let slot = self.slot(self.index);
        let (text, process_host) = sources::benign(source, &self.world, &mut self.rng, slot);
        if let Some(seen) = process_host.and_then(|h| self.first_process.get_mut(h as usize)) {
            seen.get_or_insert(slot.time_ms);
        }
        Record {
            source,
            text,
            index: self.index,
            truth: None,
        }
    }

    /// A Windows host that has run processes for longer than the baseline's learning
    /// and has not had a baseline story yet.
    fn learned_host(&mut self, now_ms: i64) -> Option<u32> {
        let learned = now_ms - (NEW_PARENT_LEARNING_HOURS + 1) * 3_600_000;
        let hosts = self.first_process.len() as u64;
        let start = self.rng.below(hosts.max(1));
        (0..hosts.min(256))
            .map(|k| ((start + k * 7919) % hosts.max(1)) as u32)
            .find(|h| {
                !self.used_for_baseline.contains(h)
                    && self
                        .first_process
                        .get(*h as usize)
                        .copied()
                        .flatten()
                        .is_some_and(|t| t <= learned)
            })
    }

    /// Queues the next story that can run now; false when none can.
    fn queue_story(&mut self) -> bool {
        for _ in 0..self.rotation.len() {
            let story = self.rotation[self.next_story % self.rotation.len()];
            self.next_story += 1;
            let n = self.stories;
            let count = attacks::events(story);
            let slots: Vec<Slot> = (0..count as u64)
                .map(|k| self.slot(self.index + k))
                .collect();
            let now = self.world.time_of(self.index);
            let mut host_name = World::windows_host(
                self.rng.below(u64::from(self.world.windows_hosts.max(1))) as u32,
            );
            if story == Story::Baseline {
                let Some(host) = self.learned_host(now) else {
                    continue;
                };
                self.used_for_baseline.insert(host);
                host_name = World::windows_host(host);
            }
            let target = Target {
                n,
                host: &host_name,
                image: r"C:\Windows\System32\notepad.exe",
            };
            let events = attacks::render(story, &target, &slots, &mut self.rng);
            let last = events.len().saturating_sub(1);
            for (k, (source, text)) in events.into_iter().enumerate() {
                let index = self.index + k as u64;
                let time = attacks::event_time(
                    story,
                    self.world.time_of(self.index),
                    k,
                    self.world.time_of(index),
                );
                let truth = (k == last).then(|| attacks::truth(story, n, source, index, time));
                self.pending.push_back(Record {
                    source,
                    text,
                    index,
                    truth,
                });
            }
            self.stories += 1;
            return true;
        }
        false
    }
}

impl Iterator for Stream {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.pending.is_empty()
            && self.attack_every > 0
            && self.index > 0
            && self.index.is_multiple_of(self.attack_every)
        {
            self.queue_story();
        }
        let record = match self.pending.pop_front() {
            Some(r) => r,
            None => self.benign(),
        };
        self.index += 1;
        Some(record)
    }
}
