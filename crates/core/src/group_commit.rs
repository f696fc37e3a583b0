//! Group commit, shared by the stores: rows waiting for the writer at once are committed
//! together, so a burst of POSTs costs one commit instead of one each.

use tokio::sync::{mpsc, oneshot};

/// A row waiting for its commit, and who waits for the answer.
pub type Pending<R, E> = (R, oneshot::Sender<Result<(), E>>);

/// Takes whatever is waiting in `queue` (at most `max_group` at a time) and commits it with one
/// `commit` call; each caller is answered only once its row is committed. If a group fails,
/// its rows are committed one by one so that each caller gets its own answer (a duplicate id
/// fails only its own POST). Returns when every sender is dropped, i.e. with the store.
pub async fn run<R, E>(
    mut queue: mpsc::Receiver<Pending<R, E>>,
    max_group: usize,
    commit: impl AsyncFn(&[&R]) -> Result<(), E>,
) {
    let mut group = Vec::with_capacity(max_group);
    while queue.recv_many(&mut group, max_group).await > 0 {
        let rows: Vec<&R> = group.iter().map(|(r, _)| r).collect();
        let result = commit(&rows).await;
        match result {
            Ok(()) => group.drain(..).for_each(|(_, reply)| {
                let _ = reply.send(Ok(()));
            }),
            Err(e) if group.len() == 1 => {
                if let Some((_, reply)) = group.pop() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                for (row, reply) in group.drain(..) {
                    let _ = reply.send(commit(&[&row]).await);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows that are odd numbers fail; a group holding one fails whole.
    async fn commit(rows: &[&u32]) -> Result<(), String> {
        match rows.iter().find(|r| **r % 2 == 1) {
            Some(r) => Err(format!("{r} is odd")),
            None => Ok(()),
        }
    }

    #[tokio::test]
    async fn a_failed_group_is_retried_row_by_row_and_each_caller_gets_its_own_answer() {
        let (tx, queue) = mpsc::channel(16);
        let mut answers = Vec::new();
        for n in [2u32, 3, 4, 5] {
            let (reply, answer) = oneshot::channel();
            tx.send((n, reply)).await.unwrap();
            answers.push(answer);
        }
        drop(tx);
        run(queue, 8, async |rows: &[&u32]| commit(rows).await).await;
        let mut got = Vec::new();
        for a in answers {
            got.push(a.await.unwrap());
        }
        assert_eq!(got, vec![Ok(()), Err("3 is odd".to_string()), Ok(()), Err("5 is odd".to_string())]);
    }
}
