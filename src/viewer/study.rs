//! Studies of one container's metric over a range, on its raw per-second
//! values (rates for counters): periodicity (autocorrelation) and
//! changepoints (level shifts). The analysis is pure ([`periodicity`],
//! [`changepoints`]); this module reads the samples and puts them on an even
//! time grid first.

pub mod changepoints;
pub mod fft;
pub mod periodicity;
#[cfg(test)]
mod testdata;
