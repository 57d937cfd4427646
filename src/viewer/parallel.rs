//! Spreading per-file work over a few threads.

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

#[cfg(test)]
mod tests {
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
}
