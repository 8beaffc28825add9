//! Listing many jobs by id. The ids travel in the query string, so a request names at most
//! [`JOB_IDS_PER_REQUEST`] of them; a longer list is read chunk by chunk behind one cursor, so
//! the port's caller pages through it as through any listing.

use domain::JobId;
use domain::ports::{AtsError, PageCursor};

/// Job ids per `GET /ats/jobs` request, which keeps each URL well under common limits.
pub(crate) const JOB_IDS_PER_REQUEST: usize = 50;

/// Marks a cursor of a chunked listing, so that it is never mistaken for one of Kombo's.
const PREFIX: &str = "stagewatch-chunk:";

/// Where a chunked listing stands: which chunk of ids, and Kombo's cursor within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkPosition {
    pub(crate) chunk: usize,
    pub(crate) kombo: Option<PageCursor>,
}

impl ChunkPosition {
    /// The position a caller's cursor names; the start when it has none.
    pub(crate) fn from_cursor(cursor: Option<&PageCursor>) -> Result<Self, AtsError> {
        let Some(cursor) = cursor else {
            return Ok(Self {
                chunk: 0,
                kombo: None,
            });
        };
        let unreadable = || AtsError::CursorExpired {
            message: format!("`{}` is not a cursor of a chunked job listing", cursor.0),
        };
        let rest = cursor.0.strip_prefix(PREFIX).ok_or_else(unreadable)?;
        let (chunk, kombo) = rest.split_once(':').ok_or_else(unreadable)?;
        Ok(Self {
            chunk: chunk.parse().map_err(|_| unreadable())?,
            kombo: (!kombo.is_empty()).then(|| PageCursor(kombo.to_owned())),
        })
    }

    /// The cursor after a page of this chunk that Kombo ended with `kombo_next`; `None` after
    /// the last page of the last of `chunks`.
    pub(crate) fn next(&self, kombo_next: Option<PageCursor>, chunks: usize) -> Option<PageCursor> {
        let (chunk, kombo) = match kombo_next {
            Some(next) => (self.chunk, next.0),
            None if self.chunk + 1 < chunks => (self.chunk + 1, String::new()),
            None => return None,
        };
        Some(PageCursor(format!("{PREFIX}{chunk}:{kombo}")))
    }
}

/// The ids of chunk `index`, if there is one.
pub(crate) fn chunk(ids: &[JobId], index: usize) -> Option<&[JobId]> {
    ids.chunks(JOB_IDS_PER_REQUEST).nth(index)
}

/// How many chunks `ids` make.
pub(crate) fn count(ids: &[JobId]) -> usize {
    ids.len().div_ceil(JOB_IDS_PER_REQUEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_walks_each_chunk_then_the_next() {
        let start = ChunkPosition::from_cursor(None).unwrap();
        assert_eq!(start.chunk, 0);
        let within = start.next(Some(PageCursor("k2".into())), 3).unwrap();
        let position = ChunkPosition::from_cursor(Some(&within)).unwrap();
        assert_eq!(
            (position.chunk, position.kombo.clone()),
            (0, Some(PageCursor("k2".into())))
        );
        let second = position.next(None, 3).unwrap();
        let position = ChunkPosition::from_cursor(Some(&second)).unwrap();
        assert_eq!((position.chunk, position.kombo.clone()), (1, None));
        let last = ChunkPosition {
            chunk: 2,
            kombo: None,
        };
        assert_eq!(last.next(None, 3), None);
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        let error =
            ChunkPosition::from_cursor(Some(&PageCursor("eyJwYWdlIjoxfQ".into()))).unwrap_err();
        assert_eq!(error.kind(), "cursor_expired");
    }

    #[test]
    fn ids_split_into_chunks_of_fifty() {
        let ids: Vec<JobId> = (0..120)
            .map(|n| JobId::parse(format!("job-{n}")).unwrap())
            .collect();
        assert_eq!(count(&ids), 3);
        assert_eq!(chunk(&ids, 2).unwrap().len(), 20);
        assert!(chunk(&ids, 3).is_none());
    }
}
