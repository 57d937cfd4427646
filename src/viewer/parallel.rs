//! Spreading per-file work over a few threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Threads the viewer uses for one request's per-file work: the cores there
/// are, at most four (the viewer shares its node with what it watches).
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4))
}

/// Maps `f` over `items` on up to `workers` threads, results in input order.
/// The items of a worker that panics become `on_panic(item)`.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
    on_panic: impl Fn(&T) -> R,
) -> Vec<R> {
    if items.len() <= 1 || workers <= 1 {
        return items.iter().map(&f).collect();
    }
    let per_worker = items.len().div_ceil(workers);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_worker)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .zip(items.chunks(per_worker))
            .flat_map(|(h, part)| {
                h.join()
                    .unwrap_or_else(|_| part.iter().map(&on_panic).collect())
            })
            .collect()
    })
}

/// Runs `work` on every item on up to `workers` threads while the calling
/// thread hands each result to `consume` in input order, so decoding the next
/// files overlaps with using the previous ones. Workers take items in runs of
/// `batch` (one wake-up per run, not per item); at most `window` items are
/// ahead of `consume` at any time, which bounds the memory held. An item
/// whose `work` panics gets `on_panic(item)` instead.
pub fn for_each_ordered<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    window: usize,
    work: impl Fn(&T) -> R + Sync,
    on_panic: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(&T, R),
) {
    let guarded = |item: &T| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(item)))
            .unwrap_or_else(|_| on_panic(item))
    };
    if items.len() <= 1 || workers <= 1 {
        for item in items {
            consume(item, guarded(item));
        }
        return;
    }
    let window = window.max(2);
    // Small runs keep the workers busy; at most half a window each.
    let batch = (items.len() / (workers * 8)).clamp(1, window / 2);
    let next = AtomicUsize::new(0);
    let consumed = (Mutex::new(0usize), Condvar::new());
    let (send, receive) = std::sync::mpsc::channel::<(usize, Vec<R>)>();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(items.len()) {
            let send = send.clone();
            let (next, consumed, guarded) = (&next, &consumed, &guarded);
            scope.spawn(move || {
                loop {
                    let first = next.fetch_add(batch, Ordering::Relaxed);
                    if first >= items.len() {
                        return;
                    }
                    let end = (first + batch).min(items.len());
                    let (done, wake) = consumed;
                    let mut done_now = lock(done);
                    while end > *done_now + window {
                        done_now = wake.wait(done_now).unwrap_or_else(|p| p.into_inner());
                    }
                    drop(done_now);
                    let results = items[first..end].iter().map(guarded).collect();
                    if send.send((first, results)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        let mut waiting = std::collections::BTreeMap::new();
        let mut expected = 0;
        while expected < items.len() {
            let Ok((first, results)) = receive.recv() else {
                break;
            };
            waiting.insert(first, results);
            while let Some(results) = waiting.remove(&expected) {
                for result in results {
                    consume(&items[expected], result);
                    expected += 1;
                }
            }
            let (done, wake) = &consumed;
            *lock(done) = expected;
            wake.notify_all();
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_keep_input_order_and_panics_stay_in_their_part() {
        let items: Vec<u32> = (0..10).collect();
        let out = super::map(&items, 3, |x| x * 2, |_| 0);
        assert_eq!(out, (0..10).map(|x| x * 2).collect::<Vec<_>>());
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let out = super::map(
            &items,
            2,
            |x| if *x == 7 { panic!("x") } else { *x },
            |_| 99,
        );
        std::panic::set_hook(quiet);
        assert_eq!(out, vec![0, 1, 2, 3, 4, 99, 99, 99, 99, 99]);
    }

    #[test]
    fn ordered_results_arrive_in_order_within_the_window() {
        let items: Vec<u64> = (0..200).collect();
        let ahead = AtomicUsize::new(0);
        let consumed = AtomicUsize::new(0);
        let mut seen = Vec::new();
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        super::for_each_ordered(
            &items,
            3,
            8,
            |x| {
                // Never more than the window past what was consumed.
                let started = ahead.fetch_add(1, Ordering::SeqCst);
                assert!(started < consumed.load(Ordering::SeqCst) + 8 + 3 * 4);
                // Uneven work so results finish out of order.
                std::thread::sleep(std::time::Duration::from_micros((x * 7919) % 300));
                if *x == 150 {
                    panic!("bad item");
                }
                x * 2
            },
            |_| u64::MAX,
            |x, r| {
                consumed.fetch_add(1, Ordering::SeqCst);
                seen.push((*x, r));
            },
        );
        std::panic::set_hook(quiet);
        assert_eq!(seen.len(), 200);
        for (i, (x, r)) in seen.into_iter().enumerate() {
            assert_eq!(x, i as u64);
            assert_eq!(r, if x == 150 { u64::MAX } else { x * 2 });
        }
    }
}
