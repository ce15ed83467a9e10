//! The iterators of a typed receiver, the same for every flavor.

/// Defines `Iter`, `TryIter` and `IntoIter` for the flavor module's
/// `Receiver<T>`, which must have `recv` and `try_recv`, and implements
/// `IntoIterator` for it and for a reference to it.
macro_rules! receiver_iterators {
    () => {
        /// A blocking iterator over a [`Receiver`]'s messages; see [`Receiver::iter`].
        pub struct Iter<'a, T: ShmSafe> {
            rx: &'a Receiver<T>,
        }

        /// A non-blocking iterator over a [`Receiver`]'s messages; see
        /// [`Receiver::try_iter`].
        pub struct TryIter<'a, T: ShmSafe> {
            rx: &'a Receiver<T>,
        }

        /// An owning blocking iterator over a [`Receiver`]'s messages.
        pub struct IntoIter<T: ShmSafe> {
            rx: Receiver<T>,
        }

        // `Debug` without a `T: Debug` bound: the receiver's own `Debug` needs none.
        impl<T: ShmSafe> core::fmt::Debug for Iter<'_, T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct("Iter").field("rx", self.rx).finish()
            }
        }

        impl<T: ShmSafe> core::fmt::Debug for TryIter<'_, T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct("TryIter").field("rx", self.rx).finish()
            }
        }

        impl<T: ShmSafe> core::fmt::Debug for IntoIter<T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct("IntoIter").field("rx", &self.rx).finish()
            }
        }

        impl<T: ShmSafe> Iterator for Iter<'_, T> {
            type Item = T;
            fn next(&mut self) -> Option<T> {
                self.rx.recv().ok()
            }
        }

        impl<T: ShmSafe> Iterator for TryIter<'_, T> {
            type Item = T;
            fn next(&mut self) -> Option<T> {
                self.rx.try_recv().ok()
            }
        }

        impl<T: ShmSafe> Iterator for IntoIter<T> {
            type Item = T;
            fn next(&mut self) -> Option<T> {
                self.rx.recv().ok()
            }
        }

        impl<'a, T: ShmSafe> IntoIterator for &'a Receiver<T> {
            type Item = T;
            type IntoIter = Iter<'a, T>;
            fn into_iter(self) -> Iter<'a, T> {
                self.iter()
            }
        }

        impl<T: ShmSafe> IntoIterator for Receiver<T> {
            type Item = T;
            type IntoIter = IntoIter<T>;
            fn into_iter(self) -> IntoIter<T> {
                IntoIter { rx: self }
            }
        }
    };
}

pub(crate) use receiver_iterators;
