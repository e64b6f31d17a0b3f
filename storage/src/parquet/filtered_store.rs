//! [`VisibleFiles`]: the object store DataFusion reads the tables through. It is the
//! local file system, read-only, whose listings leave out what [`Visibility`] hides
//! (files a compacted file replaced, files doomed by retention).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::visibility::{FileInFolder, Visibility};

/// The local file system as the tables see it.
#[derive(Debug)]
pub(crate) struct VisibleFiles {
    disk: LocalFileSystem,
    visibility: Arc<Visibility>,
}

impl fmt::Display for VisibleFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VisibleFiles({})", self.disk)
    }
}

impl VisibleFiles {
    /// The file system filtered by `visibility`.
    pub(crate) fn new(visibility: Arc<Visibility>) -> Self {
        Self {
            disk: LocalFileSystem::new(),
            visibility,
        }
    }
}

/// Refusal of every write: the tables are read through this store only.
fn read_only(operation: &str) -> datafusion::object_store::Error {
    datafusion::object_store::Error::NotSupported {
        source: format!("{operation}: the store's tables are read-only").into(),
    }
}

/// Keeps, of `listed`, what `visibility` shows, folder by folder.
fn filter(
    disk: &LocalFileSystem,
    visibility: &Visibility,
    listed: Vec<ObjectMeta>,
) -> Vec<ObjectMeta> {
    let mut folders: BTreeMap<String, Vec<(FileInFolder, ObjectMeta)>> = BTreeMap::new();
    for meta in listed {
        let Some(name) = meta.location.filename().map(str::to_string) else {
            continue;
        };
        let Ok(path) = disk.path_to_filesystem(&meta.location) else {
            continue;
        };
        let folder = path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let file = FileInFolder {
            name,
            path,
            size: meta.size,
            modified: SystemTime::from(meta.last_modified),
        };
        folders.entry(folder).or_default().push((file, meta));
    }
    let mut kept = Vec::new();
    for (_, entries) in folders {
        let files: Vec<FileInFolder> = entries.iter().map(|(f, _)| f.clone()).collect();
        let visible: std::collections::HashSet<String> = visibility
            .visible(files)
            .into_iter()
            .map(|f| f.name)
            .collect();
        kept.extend(
            entries
                .into_iter()
                .filter(|(f, _)| visible.contains(&f.name))
                .map(|(_, m)| m),
        );
    }
    kept
}

#[async_trait]
impl ObjectStore for VisibleFiles {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> Result<PutResult> {
        Err(read_only("put"))
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(read_only("put"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.disk.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        self.disk.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        locations.map(|_| Err(read_only("delete"))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let listing = self.disk.list(prefix);
        let visibility = self.visibility.clone();
        futures::stream::once(async move {
            let listed: Vec<ObjectMeta> = listing.try_collect().await?;
            // Reading compacted files' footers is blocking work.
            let kept = tokio::task::spawn_blocking(move || {
                filter(&LocalFileSystem::new(), &visibility, listed)
            })
            .await
            .map_err(|e| datafusion::object_store::Error::Generic {
                store: "VisibleFiles",
                source: Box::new(e),
            })?;
            Ok::<_, datafusion::object_store::Error>(futures::stream::iter(
                kept.into_iter().map(Ok),
            ))
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut result = self.disk.list_with_delimiter(prefix).await?;
        let visibility = self.visibility.clone();
        let objects = std::mem::take(&mut result.objects);
        result.objects = tokio::task::spawn_blocking(move || {
            filter(&LocalFileSystem::new(), &visibility, objects)
        })
        .await
        .map_err(|e| datafusion::object_store::Error::Generic {
            store: "VisibleFiles",
            source: Box::new(e),
        })?;
        Ok(result)
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> Result<()> {
        Err(read_only("copy"))
    }
}
