/*
Speediful SLAM: remove SLAM from one user database.

  Who:    a member of sysadmin.
  Where:  USE YourDatabase; then run this script.
  Keeps:  by default the tables dbo.SLAM_Settings, SLAM_Connections and SLAM_Log (they hold
          the stored connections and their history); set @drop_tables = 1 below to drop them.
  Also:   set @unregister_xp = 1 to unregister master.dbo.xp_slam as well, which the script
          does only when no other database still has SLAM installed.

Removes: the SLAM procedures, the role SLAM_operator, the certificate SLAM_signing, the
worker's database user SLAM_worker, and in master the certificate and user
SLAM_xp_<database>. Safe to re-run.
Keeps:   the worker's login (made by sql/slam-master.sql): it belongs to the instance, and
other databases may still use SLAM. The script says how to drop it.
*/
SET NOCOUNT ON;
SET XACT_ABORT ON;
GO

-------------------------------------------------------------------------------------------
-- Settings
-------------------------------------------------------------------------------------------
DECLARE @drop_tables BIT = 0;     -- 1 also drops SLAM_Settings, SLAM_Connections and SLAM_Log
DECLARE @unregister_xp BIT = 0;   -- 1 also unregisters master.dbo.xp_slam (if no other database uses it)

-------------------------------------------------------------------------------------------
DECLARE @refusal NVARCHAR(2048) = NULL;
IF DB_NAME() IN (N'master', N'model', N'msdb', N'tempdb')
    SET @refusal = N'Run sql/slam-uninstall.sql in the user database SLAM is installed in, not in ' + DB_NAME() + N'.';
ELSE IF IS_SRVROLEMEMBER(N'sysadmin') <> 1
    SET @refusal = N'Run sql/slam-uninstall.sql as a member of sysadmin: it removes a user and a certificate in master.';
IF @refusal IS NOT NULL
BEGIN
    THROW 50606, @refusal, 1;
END;

DECLARE @database SYSNAME = DB_NAME();
-- As sql/slam-install.sql names it.
DECLARE @master_principal SYSNAME = CASE WHEN LEN(@database) <= 110 THEN N'SLAM_xp_' + @database
    ELSE N'SLAM_xp_' + LEFT(@database, 80) + N'_' + LEFT(CONVERT(NVARCHAR(64), HASHBYTES('SHA2_256', @database), 2), 32) END;
DECLARE @sql NVARCHAR(MAX) = N'';
DECLARE @slam_procedures TABLE (name SYSNAME NOT NULL PRIMARY KEY, is_signed BIT NOT NULL);
-- <generated list of the SLAM procedures: SLAM_BLESS=1 cargo test -p slam-tsql>
INSERT INTO @slam_procedures (name, is_signed)
VALUES
    (N'SLAM_setup_jwt', 1),
    (N'SLAM_remove_jwt', 1),
    (N'SLAM_list_keys', 1),
    (N'SLAM_add_connection', 1),
    (N'SLAM_list_connections', 1),
    (N'SLAM_use_connection_username', 1),
    (N'SLAM_test_connection', 1),
    (N'SLAM_remove_connection', 1),
    (N'SLAM_ping', 1),
    (N'SLAM_help', 0);
-- </generated list>

-- The SLAM procedures (their signatures go with them); no other procedure is touched.
SELECT @sql = @sql + N'DROP PROCEDURE dbo.' + QUOTENAME(name) + N';' + NCHAR(10)
FROM @slam_procedures
WHERE OBJECT_ID(N'dbo.' + QUOTENAME(name), N'P') IS NOT NULL;
EXEC sys.sp_executesql @sql;
DECLARE @strangers NVARCHAR(2000) = NULL;
SELECT @strangers = LEFT(COALESCE(@strangers + N', ', N'') + p.name, 2000)
FROM sys.procedures AS p
WHERE p.schema_id = SCHEMA_ID(N'dbo') AND p.name LIKE N'SLAM[_]%';
IF @strangers IS NOT NULL
    RAISERROR(N'Kept, because this SLAM version did not write them: %s. Drop them by hand if an older SLAM left them.', 10, 1, @strangers) WITH NOWAIT;

-- The certificate here, and its copy and user in master.
IF CERT_ID(N'SLAM_signing') IS NOT NULL
BEGIN
    DROP CERTIFICATE SLAM_signing;
END;
SET @sql = N'IF DATABASE_PRINCIPAL_ID(@p) IS NOT NULL EXEC (N''DROP USER '' + QUOTENAME(@p));
IF CERT_ID(@p) IS NOT NULL EXEC (N''DROP CERTIFICATE '' + QUOTENAME(@p));';
EXEC master.sys.sp_executesql @sql, N'@p SYSNAME', @p = @master_principal;

-- The role, once nobody is in it.
IF DATABASE_PRINCIPAL_ID(N'SLAM_operator') IS NOT NULL
BEGIN
    SET @sql = N'';
    SELECT @sql = @sql + N'ALTER ROLE SLAM_operator DROP MEMBER ' + QUOTENAME(USER_NAME(m.member_principal_id)) + N';' + NCHAR(10)
    FROM sys.database_role_members AS m
    WHERE m.role_principal_id = DATABASE_PRINCIPAL_ID(N'SLAM_operator');
    EXEC sys.sp_executesql @sql;
    DROP ROLE SLAM_operator;
END;

-- The worker's user. Its login stays: it is instance-wide, and other databases may use it.
IF DATABASE_PRINCIPAL_ID(N'SLAM_worker') IS NOT NULL
BEGIN
    DECLARE @worker_login SYSNAME = SUSER_SNAME((SELECT sid FROM sys.database_principals WHERE name = N'SLAM_worker'));
    DROP USER SLAM_worker;
    RAISERROR(N'Dropped the database user SLAM_worker.', 10, 1) WITH NOWAIT;
    IF @worker_login IS NOT NULL
    BEGIN
        DECLARE @drop_login NVARCHAR(400) = N'DROP LOGIN ' + QUOTENAME(@worker_login) + N';';
        RAISERROR(N'Kept the worker''s login %s: it belongs to the instance. Once no database uses SLAM, a sysadmin may drop it in master: %s', 10, 1, @worker_login, @drop_login) WITH NOWAIT;
    END;
END;

IF @drop_tables = 1
BEGIN
    DROP TABLE IF EXISTS dbo.SLAM_Log;
    DROP TABLE IF EXISTS dbo.SLAM_Connections;
    DROP TABLE IF EXISTS dbo.SLAM_Settings;
    RAISERROR(N'Dropped the tables SLAM_Settings, SLAM_Connections and SLAM_Log.', 10, 1) WITH NOWAIT;
END
ELSE
BEGIN
    RAISERROR(N'Kept the tables SLAM_Settings, SLAM_Connections and SLAM_Log (set @drop_tables = 1 to drop them).', 10, 1) WITH NOWAIT;
END;

IF @unregister_xp = 1
BEGIN
    IF EXISTS (SELECT 1 FROM master.sys.database_principals WHERE name LIKE N'SLAM[_]xp[_]%')
    BEGIN
        RAISERROR(N'Kept master.dbo.xp_slam: another database still has SLAM installed.', 10, 1) WITH NOWAIT;
    END
    ELSE IF EXISTS (SELECT 1 FROM master.sys.extended_procedures WHERE name = N'xp_slam')
    BEGIN
        DBCC xp_slam(FREE) WITH NO_INFOMSGS;
        EXEC master.sys.sp_dropextendedproc N'xp_slam';
        RAISERROR(N'Unregistered master.dbo.xp_slam.', 10, 1) WITH NOWAIT;
    END;
END;

RAISERROR(N'SLAM is removed from %s.', 10, 1, @database) WITH NOWAIT;
GO
