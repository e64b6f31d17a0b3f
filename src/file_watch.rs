//! Watching rule folders by polling: the names, sizes and modification times of their
//! files are compared every interval (cheap: nothing is read), and a change calls back.
//! Used by the Sigma and the YARA rules of `vedette run`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// Names, sizes and times of a list of files.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The fingerprint of the files `list` gives (off the async threads).
async fn fingerprint<L>(list: &L) -> Fingerprint
where
    L: Fn() -> Vec<PathBuf> + Clone + Send + 'static,
{
    let list = list.clone();
    tokio::task::spawn_blocking(move || {
        list()
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                let modified = meta.and_then(|m| m.modified().ok());
                (f, len, modified)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Polls the files `list` gives every `every`, and runs `changed` when their names,
/// sizes or times differ from the last look, until `cancel`.
pub(crate) fn spawn_watch<L, C, F>(
    every: Duration,
    cancel: CancellationToken,
    list: L,
    changed: C,
) -> tokio::task::JoinHandle<()>
where
    L: Fn() -> Vec<PathBuf> + Clone + Send + Sync + 'static,
    C: Fn() -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut seen = fingerprint(&list).await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let now = fingerprint(&list).await;
            if now != seen {
                seen = now;
                changed().await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_changed_file_calls_back_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yar");
        std::fs::write(&file, "one").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let listed = file.clone();
        let watch = spawn_watch(
            Duration::from_millis(20),
            cancel.clone(),
            move || vec![listed.clone()],
            move || {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(());
                }
            },
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(rx.try_recv().is_err(), "nothing changed yet");
        std::fs::write(&file, "two, longer").unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(rx.try_recv().is_err(), "one change, one call");
        cancel.cancel();
        watch.await.unwrap();
    }
}
