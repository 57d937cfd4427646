//! The data directory contract shared by the agent (writer) and the viewer
//! (reader); see DESIGN.md "Data directory".
//!
//! - [`layout`]: paths and time-named files; listing the files of a range.
//! - [`schema`]: the Parquet columns and their counter/gauge metadata.
//! - [`buffer`]: the open interval in memory; [`varint`]: its compact integer codes.
//! - [`writer`]: writing an interval as a data file atomically.
//! - [`summary`]: what the overview ranks by, per container and file (written in each file's footer).
//! - [`tail`]: the open interval on disk, appended each cycle (live view, crash recovery).
//! - [`reader`]: reading a file's schema or rows.
//! - [`retention`]: what to delete when data is too old or too big.
//! - [`datasets`]: the per-node datasets beside each metrics file (pods' interfaces, IO per device).
//! - [`hours`]: a closed hour's file summaries joined into one file (the overview of long ranges).
//! - [`index`]: `index.json`, written atomically, versions 1 and 2.
//! - [`durable`]: directory fsyncs after publishing renames.
//! - [`events`]: pod failure events, JSON lines per day.
//! - [`bounds`]: sizes a corrupt file may claim are checked before memory is spent on them.
//! - [`lock`]: one writer per data directory (`.lock`, flock).

pub mod bounds;
pub mod buffer;
pub mod datasets;
pub mod durable;
pub mod events;
pub mod hours;
pub mod index;
pub mod layout;
pub mod lock;
pub mod reader;
pub mod retention;
pub mod schema;
pub mod summary;
pub mod tail;
pub mod varint;
pub mod writer;
