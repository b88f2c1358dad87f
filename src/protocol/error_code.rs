//! Kafka's error codes as a typed enum, with the retriable / fatal split.
//!
//! The numbers and names are Kafka's (the `Errors` table of the protocol guide).
//! "Retriable" follows the Java client: the same request may succeed if sent again, possibly
//! after refreshing metadata or finding the coordinator again.

use std::fmt;

macro_rules! error_codes {
    ($( $code:literal $variant:ident $name:literal $retriable:literal $desc:literal ;)*) => {
        /// An error code a broker returned. `0` (no error) is not a variant: decoding it
        /// gives `None` from [`ErrorCode::from_code`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(
                #[doc = $desc]
                $variant,
            )*
            /// A code this version of grete does not know (newer than it). Treated as fatal.
            Unknown(i16),
        }

        impl ErrorCode {
            /// The typed error for a wire code; `None` for `0`, which means success.
            pub fn from_code(code: i16) -> Option<ErrorCode> {
                match code {
                    0 => None,
                    $( $code => Some(ErrorCode::$variant), )*
                    other => Some(ErrorCode::Unknown(other)),
                }
            }

            /// The wire code.
            pub fn code(self) -> i16 {
                match self {
                    $( ErrorCode::$variant => $code, )*
                    ErrorCode::Unknown(c) => c,
                }
            }

            /// Kafka's name for the error, e.g. `NOT_LEADER_OR_FOLLOWER`.
            pub fn name(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $name, )*
                    ErrorCode::Unknown(_) => "UNKNOWN",
                }
            }

            /// Whether sending the request again may succeed.
            pub fn is_retriable(self) -> bool {
                match self {
                    $( ErrorCode::$variant => $retriable, )*
                    ErrorCode::Unknown(_) => false,
                }
            }

            /// A short description of the error.
            pub fn description(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $desc, )*
                    ErrorCode::Unknown(_) => "an error code this client does not know",
                }
            }

            /// Every known code, in wire order.
            pub const ALL: &'static [ErrorCode] = &[$( ErrorCode::$variant, )*];
        }
    };
}

error_codes! {
    -1 UnknownServerError "UNKNOWN_SERVER_ERROR" false "The server experienced an unexpected error.";
    1 OffsetOutOfRange "OFFSET_OUT_OF_RANGE" false "The requested offset is not within the range the server holds.";
    2 CorruptMessage "CORRUPT_MESSAGE" true "A message failed its CRC check, exceeds a valid size, has a null key on a compacted topic, or is otherwise corrupt.";
    3 UnknownTopicOrPartition "UNKNOWN_TOPIC_OR_PARTITION" true "This server does not host this topic-partition.";
    4 InvalidFetchSize "INVALID_FETCH_SIZE" false "The requested fetch size is invalid.";
    5 LeaderNotAvailable "LEADER_NOT_AVAILABLE" true "There is no leader for this topic-partition, as an election is in progress.";
    6 NotLeaderOrFollower "NOT_LEADER_OR_FOLLOWER" true "This server is not the leader (or a follower) for that topic-partition.";
    7 RequestTimedOut "REQUEST_TIMED_OUT" true "The request timed out.";
    8 BrokerNotAvailable "BROKER_NOT_AVAILABLE" false "The broker is not available.";
    9 ReplicaNotAvailable "REPLICA_NOT_AVAILABLE" true "The replica is not available for the requested topic-partition.";
    10 MessageTooLarge "MESSAGE_TOO_LARGE" false "The request included a message larger than the server will accept.";
    11 StaleControllerEpoch "STALE_CONTROLLER_EPOCH" false "The controller moved to another broker.";
    12 OffsetMetadataTooLarge "OFFSET_METADATA_TOO_LARGE" false "The metadata field of the offset request was too large.";
    13 NetworkException "NETWORK_EXCEPTION" true "The server disconnected before a response was received.";
    14 CoordinatorLoadInProgress "COORDINATOR_LOAD_IN_PROGRESS" true "The coordinator is loading and cannot process requests yet.";
    15 CoordinatorNotAvailable "COORDINATOR_NOT_AVAILABLE" true "The coordinator is not available.";
    16 NotCoordinator "NOT_COORDINATOR" true "This is not the correct coordinator.";
    17 InvalidTopicException "INVALID_TOPIC_EXCEPTION" false "The request attempted to act on an invalid topic.";
    18 RecordListTooLarge "RECORD_LIST_TOO_LARGE" false "A produce batch is larger than the server's maximum segment size.";
    19 NotEnoughReplicas "NOT_ENOUGH_REPLICAS" true "Fewer in-sync replicas than required.";
    20 NotEnoughReplicasAfterAppend "NOT_ENOUGH_REPLICAS_AFTER_APPEND" true "The messages were written to the log, but to fewer in-sync replicas than required.";
    21 InvalidRequiredAcks "INVALID_REQUIRED_ACKS" false "The produce request specified an invalid value for required acks.";
    22 IllegalGeneration "ILLEGAL_GENERATION" false "The group generation id is not valid.";
    23 InconsistentGroupProtocol "INCONSISTENT_GROUP_PROTOCOL" false "The member's protocol type or protocols are not compatible with the group's.";
    24 InvalidGroupId "INVALID_GROUP_ID" false "The group id is invalid.";
    25 UnknownMemberId "UNKNOWN_MEMBER_ID" false "The coordinator is not aware of this member.";
    26 InvalidSessionTimeout "INVALID_SESSION_TIMEOUT" false "The session timeout is outside the broker's allowed range.";
    27 RebalanceInProgress "REBALANCE_IN_PROGRESS" false "The group is rebalancing, so a rejoin is needed.";
    28 InvalidCommitOffsetSize "INVALID_COMMIT_OFFSET_SIZE" false "The committing offset data size is not valid.";
    29 TopicAuthorizationFailed "TOPIC_AUTHORIZATION_FAILED" false "Topic authorization failed.";
    30 GroupAuthorizationFailed "GROUP_AUTHORIZATION_FAILED" false "Group authorization failed.";
    31 ClusterAuthorizationFailed "CLUSTER_AUTHORIZATION_FAILED" false "Cluster authorization failed.";
    32 InvalidTimestamp "INVALID_TIMESTAMP" false "The timestamp of the message is out of the acceptable range.";
    33 UnsupportedSaslMechanism "UNSUPPORTED_SASL_MECHANISM" false "The broker does not support the requested SASL mechanism.";
    34 IllegalSaslState "ILLEGAL_SASL_STATE" false "The request is not valid given the current SASL state.";
    35 UnsupportedVersion "UNSUPPORTED_VERSION" false "The version of the API is not supported.";
    36 TopicAlreadyExists "TOPIC_ALREADY_EXISTS" false "The topic already exists.";
    37 InvalidPartitions "INVALID_PARTITIONS" false "The number of partitions is invalid.";
    38 InvalidReplicationFactor "INVALID_REPLICATION_FACTOR" false "The replication factor is invalid.";
    39 InvalidReplicaAssignment "INVALID_REPLICA_ASSIGNMENT" false "The replica assignment is invalid.";
    40 InvalidConfig "INVALID_CONFIG" false "The configuration is invalid.";
    41 NotController "NOT_CONTROLLER" true "This is not the correct controller for this cluster.";
    42 InvalidRequest "INVALID_REQUEST" false "The request is malformed or not valid for this broker.";
    43 UnsupportedForMessageFormat "UNSUPPORTED_FOR_MESSAGE_FORMAT" false "The message format version on the broker does not support the request.";
    44 PolicyViolation "POLICY_VIOLATION" false "The request parameters do not satisfy the configured policy.";
    45 OutOfOrderSequenceNumber "OUT_OF_ORDER_SEQUENCE_NUMBER" false "The broker received an out of order sequence number.";
    46 DuplicateSequenceNumber "DUPLICATE_SEQUENCE_NUMBER" false "The broker received a duplicate sequence number.";
    47 InvalidProducerEpoch "INVALID_PRODUCER_EPOCH" false "The producer's epoch is older than the broker's.";
    48 InvalidTxnState "INVALID_TXN_STATE" false "The producer attempted a transactional operation in an invalid state.";
    49 InvalidProducerIdMapping "INVALID_PRODUCER_ID_MAPPING" false "The producer id does not match the transactional id.";
    50 InvalidTransactionTimeout "INVALID_TRANSACTION_TIMEOUT" false "The transaction timeout is larger than the broker allows.";
    51 ConcurrentTransactions "CONCURRENT_TRANSACTIONS" true "Another transaction with this transactional id is still completing.";
    52 TransactionCoordinatorFenced "TRANSACTION_COORDINATOR_FENCED" false "This transaction coordinator has been fenced by a newer one.";
    53 TransactionalIdAuthorizationFailed "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" false "Transactional id authorization failed.";
    54 SecurityDisabled "SECURITY_DISABLED" false "Security features are disabled.";
    55 OperationNotAttempted "OPERATION_NOT_ATTEMPTED" false "The broker did not attempt this operation because another in the batch failed.";
    56 KafkaStorageError "KAFKA_STORAGE_ERROR" true "Disk error when trying to access a log file on the broker.";
    57 LogDirNotFound "LOG_DIR_NOT_FOUND" false "The user-specified log directory is not found.";
    58 SaslAuthenticationFailed "SASL_AUTHENTICATION_FAILED" false "SASL authentication failed.";
    59 UnknownProducerId "UNKNOWN_PRODUCER_ID" false "The broker has no state for this producer id.";
    60 ReassignmentInProgress "REASSIGNMENT_IN_PROGRESS" false "A partition reassignment is in progress.";
    61 DelegationTokenAuthDisabled "DELEGATION_TOKEN_AUTH_DISABLED" false "Delegation token feature is not enabled.";
    62 DelegationTokenNotFound "DELEGATION_TOKEN_NOT_FOUND" false "Delegation token is not found on server.";
    63 DelegationTokenOwnerMismatch "DELEGATION_TOKEN_OWNER_MISMATCH" false "Specified principal is not a valid owner or renewer.";
    64 DelegationTokenRequestNotAllowed "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED" false "Delegation token requests are not allowed on this connection.";
    65 DelegationTokenAuthorizationFailed "DELEGATION_TOKEN_AUTHORIZATION_FAILED" false "Delegation token authorization failed.";
    66 DelegationTokenExpired "DELEGATION_TOKEN_EXPIRED" false "Delegation token is expired.";
    67 InvalidPrincipalType "INVALID_PRINCIPAL_TYPE" false "The supplied principal type is not supported.";
    68 NonEmptyGroup "NON_EMPTY_GROUP" false "The group is not empty.";
    69 GroupIdNotFound "GROUP_ID_NOT_FOUND" false "The group id does not exist.";
    70 FetchSessionIdNotFound "FETCH_SESSION_ID_NOT_FOUND" true "The fetch session id was not found.";
    71 InvalidFetchSessionEpoch "INVALID_FETCH_SESSION_EPOCH" true "The fetch session epoch is invalid.";
    72 ListenerNotFound "LISTENER_NOT_FOUND" true "The leader has no endpoint for the listener the request came in on.";
    73 TopicDeletionDisabled "TOPIC_DELETION_DISABLED" false "Topic deletion is disabled.";
    74 FencedLeaderEpoch "FENCED_LEADER_EPOCH" true "The leader epoch in the request is older than the broker's.";
    75 UnknownLeaderEpoch "UNKNOWN_LEADER_EPOCH" true "The leader epoch in the request is newer than the broker's.";
    76 UnsupportedCompressionType "UNSUPPORTED_COMPRESSION_TYPE" false "The requesting client does not support the compression type of the data.";
    77 StaleBrokerEpoch "STALE_BROKER_EPOCH" false "Broker epoch has changed.";
    78 OffsetNotAvailable "OFFSET_NOT_AVAILABLE" true "The leader high watermark has not caught up after a leader change.";
    79 MemberIdRequired "MEMBER_ID_REQUIRED" false "The group member must rejoin with the member id the coordinator assigned.";
    80 PreferredLeaderNotAvailable "PREFERRED_LEADER_NOT_AVAILABLE" true "The preferred leader was not available.";
    81 GroupMaxSizeReached "GROUP_MAX_SIZE_REACHED" false "The group has reached its maximum size.";
    82 FencedInstanceId "FENCED_INSTANCE_ID" false "Another member with the same group instance id fenced this one.";
    83 EligibleLeadersNotAvailable "ELIGIBLE_LEADERS_NOT_AVAILABLE" true "Eligible topic-partition leaders are not available.";
    84 ElectionNotNeeded "ELECTION_NOT_NEEDED" true "Leader election not needed for the topic-partition.";
    85 NoReassignmentInProgress "NO_REASSIGNMENT_IN_PROGRESS" false "No partition reassignment is in progress.";
    86 GroupSubscribedToTopic "GROUP_SUBSCRIBED_TO_TOPIC" false "Deleting offsets of a topic the group is subscribed to is forbidden.";
    87 InvalidRecord "INVALID_RECORD" false "The record failed the broker's validation and was rejected.";
    88 UnstableOffsetCommit "UNSTABLE_OFFSET_COMMIT" true "There are unstable offsets that must be cleared first.";
    89 ThrottlingQuotaExceeded "THROTTLING_QUOTA_EXCEEDED" true "The throttling quota has been exceeded.";
    90 ProducerFenced "PRODUCER_FENCED" false "A newer producer with the same transactional id fenced this one.";
    91 ResourceNotFound "RESOURCE_NOT_FOUND" false "A request illegally referred to a resource that does not exist.";
    92 DuplicateResource "DUPLICATE_RESOURCE" false "A request illegally referred to the same resource twice.";
    93 UnacceptableCredential "UNACCEPTABLE_CREDENTIAL" false "The requested credential would not meet criteria for acceptability.";
    94 InconsistentVoterSet "INCONSISTENT_VOTER_SET" false "The voter set does not match the leader's.";
    95 InvalidUpdateVersion "INVALID_UPDATE_VERSION" false "The given update version was invalid.";
    96 FeatureUpdateFailed "FEATURE_UPDATE_FAILED" false "Unable to update finalized features.";
    97 PrincipalDeserializationFailure "PRINCIPAL_DESERIALIZATION_FAILURE" false "The forwarded principal could not be deserialized.";
    98 SnapshotNotFound "SNAPSHOT_NOT_FOUND" false "The requested snapshot was not found.";
    99 PositionOutOfRange "POSITION_OUT_OF_RANGE" false "The requested position is not within the snapshot.";
    100 UnknownTopicId "UNKNOWN_TOPIC_ID" true "This server does not host this topic id.";
    101 DuplicateBrokerRegistration "DUPLICATE_BROKER_REGISTRATION" false "This broker id is already in use.";
    102 BrokerIdNotRegistered "BROKER_ID_NOT_REGISTERED" false "The given broker id was not registered.";
    103 InconsistentTopicId "INCONSISTENT_TOPIC_ID" true "The log's topic id does not match the request's.";
    104 InconsistentClusterId "INCONSISTENT_CLUSTER_ID" false "The cluster id in the request does not match the server's.";
    105 TransactionalIdNotFound "TRANSACTIONAL_ID_NOT_FOUND" false "The transactional id could not be found.";
    106 FetchSessionTopicIdError "FETCH_SESSION_TOPIC_ID_ERROR" true "The fetch session saw an inconsistent use of topic ids.";
    107 IneligibleReplica "INELIGIBLE_REPLICA" false "The new ISR contains at least one ineligible replica.";
    108 NewLeaderElected "NEW_LEADER_ELECTED" false "A new leader was elected while the ISR change was pending.";
    109 OffsetMovedToTieredStorage "OFFSET_MOVED_TO_TIERED_STORAGE" false "The requested offset is moved to tiered storage.";
    110 FencedMemberEpoch "FENCED_MEMBER_EPOCH" false "The member epoch is fenced by the group coordinator.";
    111 UnreleasedInstanceId "UNRELEASED_INSTANCE_ID" false "The group instance id is still in use by another member.";
    112 UnsupportedAssignor "UNSUPPORTED_ASSIGNOR" false "The assignor or its version is not supported by the group.";
    113 StaleMemberEpoch "STALE_MEMBER_EPOCH" false "The member epoch is stale.";
    114 MismatchedEndpointType "MISMATCHED_ENDPOINT_TYPE" false "The request was sent to an endpoint of the wrong type.";
    115 UnsupportedEndpointType "UNSUPPORTED_ENDPOINT_TYPE" false "This endpoint type is not supported yet.";
    116 UnknownControllerId "UNKNOWN_CONTROLLER_ID" false "This controller id is not known.";
    117 UnknownSubscriptionId "UNKNOWN_SUBSCRIPTION_ID" false "The client sent a push telemetry request with an invalid or outdated subscription id.";
    118 TelemetryTooLarge "TELEMETRY_TOO_LARGE" false "The client sent a push telemetry request larger than the broker allows.";
    119 InvalidRegistration "INVALID_REGISTRATION" false "The controller considered the registration invalid.";
    120 TransactionAbortable "TRANSACTION_ABORTABLE" false "The server encountered an error the transaction can recover from by aborting.";
}

impl ErrorCode {
    /// Whether the error means the client's view of the cluster is stale: the metadata
    /// (leaders, topics) should be refreshed before the request is tried again.
    pub fn invalidates_metadata(self) -> bool {
        matches!(
            self,
            ErrorCode::UnknownTopicOrPartition
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NotLeaderOrFollower
                | ErrorCode::ReplicaNotAvailable
                | ErrorCode::ListenerNotFound
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::UnknownTopicId
                | ErrorCode::InconsistentTopicId
                | ErrorCode::KafkaStorageError
        )
    }

    /// Whether the error means the group or transaction coordinator must be found again.
    pub fn invalidates_coordinator(self) -> bool {
        matches!(
            self,
            ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.name(),
            self.code(),
            self.description()
        )
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_success() {
        assert_eq!(ErrorCode::from_code(0), None);
    }

    #[test]
    fn every_known_code_round_trips_and_codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &e in ErrorCode::ALL {
            assert!(seen.insert(e.code()), "duplicate code {}", e.code());
            assert_eq!(ErrorCode::from_code(e.code()), Some(e));
        }
        // Contiguous from -1 to the highest known, with no gap but 0.
        assert_eq!(seen.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::ALL.len(), 121);
    }

    #[test]
    fn unknown_codes_are_kept_and_fatal() {
        let e = ErrorCode::from_code(30000).unwrap();
        assert_eq!(e, ErrorCode::Unknown(30000));
        assert_eq!(e.code(), 30000);
        assert!(!e.is_retriable());
    }

    #[test]
    fn retriable_split_matches_kafka() {
        assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
        assert!(ErrorCode::NotLeaderOrFollower.invalidates_metadata());
        assert!(ErrorCode::NotCoordinator.invalidates_coordinator());
        assert!(ErrorCode::RequestTimedOut.is_retriable());
        assert!(!ErrorCode::OffsetOutOfRange.is_retriable());
        assert!(!ErrorCode::MessageTooLarge.is_retriable());
        assert!(!ErrorCode::UnknownMemberId.is_retriable());
        assert_eq!(
            ErrorCode::from_code(6).unwrap().name(),
            "NOT_LEADER_OR_FOLLOWER"
        );
    }
}
